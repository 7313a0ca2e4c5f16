/**
 * Packages loaded on first use. Each costs 80–100 ms at start-up, and a `clover-cd stage` process (one per
 * Run Job pod) or a `spec validate` never needs them: Handlebars renders JMeter plans, load reports and
 * metric-rule queries; hdr-histogram-js summarises JTL latencies.
 */
import { createRequire } from 'node:module';
import type HandlebarsModule from 'handlebars';
import type * as HdrModule from 'hdr-histogram-js';

const require = createRequire(import.meta.url);
let handlebarsModule: typeof HandlebarsModule | undefined;
let hdrModule: typeof HdrModule | undefined;

export const handlebars = (): typeof HandlebarsModule =>
  (handlebarsModule ??= require('handlebars') as typeof HandlebarsModule);

export const hdrHistogram = (): typeof HdrModule =>
  (hdrModule ??= require('hdr-histogram-js') as typeof HdrModule);
