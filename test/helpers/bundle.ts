import type { GateRule } from '../../src/spec/types.js';
import type { EvidenceBundle } from '../../src/validators/types.js';

/** An evidence bundle for http-lb (v1 stable, v2 candidate at 10%) over a 60 s window, with the given evidence. */
export function testBundle(
  rules: GateRule[],
  evidence: EvidenceBundle['evidence'],
  extra: Partial<EvidenceBundle> = {},
): EvidenceBundle {
  return {
    kind: 'clover-cd/evidence',
    version: 1,
    createdAt: '2024-01-01T00:00:00.000Z',
    release: 'r',
    service: { name: 'http-lb', namespace: 'default', stable: 'v1', candidate: 'v2' },
    window: { start: 0, end: 60_000 },
    candidateWeight: 10,
    minSamples: 100,
    rules,
    sources: [],
    evidence,
    ...extra,
  };
}
