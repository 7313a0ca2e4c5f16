/**
 * kork's ExpectedArtifact.matches, which Echo uses to decide whether a trigger fires and Orca to bind expected
 * artifacts (test/conformance/kork-artifact-matching.json). Pure; used by `pipeline validate` and the local runner.
 */

export interface Artifact {
  type: string;
  name?: string;
  version?: string;
  location?: string;
  reference?: string;
  [k: string]: unknown;
}

export const MATCH_FIELDS = ['type', 'name', 'version', 'location', 'reference'] as const;

/**
 * One field: an empty pattern matches anything; a missing value matches nothing; otherwise the value equals the
 * pattern or matches it as a whole (Java's Matcher.matches: a full match, not a search). A pattern JavaScript cannot
 * compile matches nothing (Orca would throw; either way the artifact is not bound).
 */
export function fieldMatches(pattern: unknown, value: unknown): boolean {
  if (pattern === undefined || pattern === null || pattern === '') return true;
  if (value === undefined || value === null) return false;
  const p = String(pattern);
  const v = String(value);
  if (p === v) return true;
  try {
    return new RegExp(`^(?:${p})$`, 's').test(v);
  } catch {
    return false;
  }
}

const BASE64 = new Set(['embedded/base64', 'remote/base64']);

function typeMatches(pattern: unknown, value: unknown): boolean {
  if (fieldMatches(pattern, value)) return true;
  // embedded/base64 and remote/base64 are the same content, stored differently.
  return BASE64.has(String(pattern)) && BASE64.has(String(value));
}

export function artifactMatches(match: Partial<Artifact>, artifact: Artifact): boolean {
  return MATCH_FIELDS.every((f) =>
    f === 'type' ? typeMatches(match.type, artifact.type) : fieldMatches(match[f], artifact[f]),
  );
}
