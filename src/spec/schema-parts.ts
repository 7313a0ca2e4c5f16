/** The pieces the spec's JSON Schemas are built from (schema.ts, gate-schema.ts). */
import { DURATION_PATTERN } from '../util/units.js';

export type Schema = Record<string, unknown>;

export const duration: Schema = {
  type: 'string',
  pattern: DURATION_PATTERN,
  description: 'a duration such as 30s, 2m',
};
// Percentages of requests or of traffic: 0% to 100%, so "200%" is caught here rather than never tripping.
export const percent: Schema = {
  type: 'string',
  pattern: '^(100(\\.0+)?|[0-9]{1,2}(\\.[0-9]+)?)%$',
  description: 'a percentage from 0% to 100% such as 1%',
};
export const weight: Schema = { type: 'integer', minimum: 0, maximum: 100 };
// Kubernetes' limits: object names are DNS subdomains (≤ 253), namespaces and Services DNS labels (≤ 63).
export const name: Schema = {
  type: 'string',
  minLength: 1,
  maxLength: 253,
  pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$',
  description: 'a DNS-1123 name',
};
export const shortName: Schema = { ...name, maxLength: 63 };
export const closed = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: 'object',
  additionalProperties: false,
  properties,
  required,
});
