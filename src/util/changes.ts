/**
 * What this process has changed outside itself (routes, release state, cluster objects), in the words an
 * error report needs: an error must never say "nothing was changed" after something was, and when a
 * release was left half-way it says how to finish it. Platforms record every write; the release engine
 * records what its writes mean (weights, release phase) and the command that finishes the release.
 * Per process: the CLI reads it when it reports an error (`cli/main.ts`).
 */
export interface Change {
  /** The object written, as messages name it ("VirtualService default/http-lb"). */
  subject: string;
  /** What it says after the write. */
  now: string;
  /** The command that finishes what the writes left half-way, when they did. */
  finish?: string;
}

const changes = new Map<string, Change>();

/** Record a write; a later write of the same object replaces what was said about it. */
export function recordChange(c: Change): void {
  changes.set(c.subject, c);
}

/** A platform's write of one object (`verb`: applied, patched, deleted); the engine's description stays when it has one. */
export function recordWrite(verb: string, ref: { kind: string; namespace?: string; name: string }): void {
  const subject = `${ref.kind} ${ref.namespace ?? 'default'}/${ref.name}`;
  const known = changes.get(subject);
  if (!known || verb === 'deleted') changes.set(subject, { subject, now: verb });
}

export function changesMade(): Change[] {
  return [...changes.values()];
}
