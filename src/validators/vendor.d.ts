/** Type declarations for packages that ship none. Only what clover-cd uses. */
declare module 'jstat' {
  interface Dist {
    cdf(x: number, ...params: number[]): number;
    inv(p: number, ...params: number[]): number;
    pdf(x: number, ...params: number[]): number;
  }
  export const jStat: {
    beta: Dist;
    binomial: { cdf(k: number, n: number, p: number): number; pdf(k: number, n: number, p: number): number };
    hypgeom: {
      cdf(k: number, N: number, m: number, n: number): number;
      pdf(k: number, N: number, m: number, n: number): number;
    };
    normal: Dist;
    gammaln(x: number): number;
  };
  const pkg: { jStat: typeof jStat };
  export default pkg;
}

/** parse-prometheus-text-format ships no types either (clover-cd's own scrape parser is services/scrape.ts). */
declare module 'parse-prometheus-text-format' {
  export interface ParsedSample {
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
    quantiles?: Record<string, string>;
    count?: string;
    sum?: string;
  }
  export interface ParsedFamily {
    name: string;
    help: string;
    type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
    metrics: ParsedSample[];
  }
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[];
}
