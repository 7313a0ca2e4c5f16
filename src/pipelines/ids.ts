import { createHash } from 'node:crypto';

/**
 * A pipeline-config id derived from application + name, shaped like the UUIDs Front50 generates, so the
 * same spec always saves over the same pipeline and pipeline triggers that point at it keep working.
 */
export function stablePipelineId(application: string, name: string): string {
  const h = createHash('sha256')
    .update(`clover-cd:${application.toLowerCase()}/${name.trim().toLowerCase()}`)
    .digest('hex');
  // RFC 4122 layout, version nibble 5 (name-based), variant 10xx.
  const variant = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
