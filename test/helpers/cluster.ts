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
