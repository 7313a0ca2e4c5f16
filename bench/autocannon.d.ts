// autocannon ships no types; the fields the sandbox benchmark reads.
declare module 'autocannon' {
  interface Result {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    non2xx: number;
    errors: number;
  }
  export default function autocannon(opts: {
    url: string;
    duration: number;
    connections: number;
    overallRate?: number;
    pipelining?: number;
  }): Promise<Result>;
}
