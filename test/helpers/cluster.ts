import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from './cli.js';

/** The real API server's admin kubeconfig (../shared/tools/real-apiserver; REALK8S_DIR, default /tmp/realk8s). */
export const ADMIN_KUBECONFIG = join(process.env.REALK8S_DIR ?? '/tmp/realk8s', 'run', 'admin.kubeconfig');
const KUBECTL = process.env.KUBECTL ?? 'kubectl';

/** kubectl as the real API server's admin, from the repository's folder; throws with kubectl's stderr. */
export const adminKubectl = (args: string[], input?: string): string =>
  execFileSync(KUBECTL, [`--kubeconfig=${ADMIN_KUBECONFIG}`, '--request-timeout=20s', ...args], {
    cwd: REPO,
    input,
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
  });

/**
 * A namespace of a suite on the real API server (../shared/tools/real-apiserver), removed afterwards. No
 * namespace controller runs there: the suite deletes the objects it made, then finalizes the namespace by
 * hand, so nothing is left.
 */
export function removeTestNamespace(
  kubectl: (args: string[], input?: string) => string,
  ns: string,
  kinds: string,
): void {
  kubectl(['-n', ns, 'delete', kinds, '--all', '--ignore-not-found']);
  kubectl(['delete', 'namespace', ns, '--wait=false', '--ignore-not-found']);
  const doc = JSON.parse(kubectl(['get', 'namespace', ns, '-o', 'json'])) as object;
  kubectl(
    ['replace', '--raw', `/api/v1/namespaces/${ns}/finalize`, '-f', '-'],
    JSON.stringify({ ...doc, spec: { finalizers: [] } }),
  );
}
