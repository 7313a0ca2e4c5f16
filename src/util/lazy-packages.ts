/**
 * Packages loaded on first use. Each costs 40–100 ms at start-up, and a `clover-cd stage` process (one per
 * Run Job pod) or a `spec validate` never needs them: Handlebars renders JMeter plans, load reports and
 * metric-rule queries; hdr-histogram-js summarises JTL latencies; ajv compiles a schema only when no
 * precompiled validator exists for it.
 */
import { createRequire } from 'node:module';
import type * as AjvModule from 'ajv';
import type HandlebarsModule from 'handlebars';
import type * as HdrModule from 'hdr-histogram-js';

const require = createRequire(import.meta.url);
let ajvModule: typeof AjvModule | undefined;
let handlebarsModule: typeof HandlebarsModule | undefined;
let hdrModule: typeof HdrModule | undefined;

/** ajv compiles the schemas the build did not (dist/util/schema-validators.cjs holds the others). */
export const ajvPackage = (): typeof AjvModule => (ajvModule ??= require('ajv') as typeof AjvModule);

export const handlebars = (): typeof HandlebarsModule =>
  (handlebarsModule ??= require('handlebars') as typeof HandlebarsModule);

export const hdrHistogram = (): typeof HdrModule =>
  (hdrModule ??= require('hdr-histogram-js') as typeof HdrModule);
