import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * --netns mode: each workload in its own network namespace joined by veth pairs (host side `cc-<n>`).
 * Only the teardown half exists yet; startSandbox refuses --netns with NETNS_UNSUPPORTED until the
 * per-namespace workload runner lands (see README "Not yet").
 */
const run = promisify(execFile);

export const NETNS_UNSUPPORTED =
  '--netns is not available yet in this version of the sandbox: run without it (every workload on its own loopback port)';

/** Delete namespaces the sandbox created (deleting a namespace removes its veth pair); missing ones are ignored. */
export async function removeNamespaces(names: string[]): Promise<void> {
  for (const n of names) await run('ip', ['netns', 'del', n]).catch(() => undefined);
}
