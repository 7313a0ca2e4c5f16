/** Trace, span and request ids for the mesh's spans and headers. */
// Ids come from a pooled random buffer: one crypto call per 1,024 ids instead of one per span.
const pool = new Uint32Array(1024);
let poolAt = pool.length;
const word = (): string => {
  if (poolAt === pool.length) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  return pool[poolAt++].toString(16).padStart(8, '0');
};
export const newSpanId = (): string => word() + word();
export const newTraceId = (): string => word() + word() + word() + word();
export const newRequestId = (): string => {
  const h = newTraceId();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
};
