import type { Command } from 'commander';
import type { CloverStatsAll } from '../../services/redis.js';
import { action, globalOptions } from '../context.js';
import { parseUrlFlag } from '../flags.js';

const redisUrl = (v: string) => parseUrlFlag('--redis', v, ['redis:', 'rediss:']);
import { printResult, table } from '../output.js';

const defaultRedis = () => process.env.CLOVER_CD_REDIS_URL ?? 'redis://127.0.0.1:6379';

function renderStats(s: CloverStatsAll): string {
  const top = (pairs: Array<[string, number]>) =>
    [...pairs]
      .reverse()
      .slice(0, 10)
      .map(([k, n]) => [k, n]);
  return [
    `traces ${s.trace_count ?? 'n/a'}   spans ${s.span_count ?? 'n/a'}   metrics ${s.metric_count ?? 'n/a'}`,
    '',
    table(
      ['service', 'min ms', 'avg ms', 'max ms'],
      s.response_times.map((r) => [r.name, r.min ?? 'n/a', r.avg ?? 'n/a', r.max ?? 'n/a']),
    ),
    '',
    table(['url', 'spans'], top(s.request_url_count)),
    '',
    table(['user agent', 'spans'], top(s.user_agent_count)),
    '',
    table(['status, url', 'spans'], top(s.status_code_count)),
    '',
    table(['node id', 'spans'], top(s.node_id_count)),
  ].join('\n');
}

export function register(program: Command): void {
  const vis = program
    .command('visibility')
    .description("Clover-compatible visibility stats in Redis (the keys Clover's dashboard reads)")
    .addHelpText(
      'after',
      "\nExamples:\n  clover-cd visibility stats --output json      # the JSON of Clover's /visibility/get/stats/all\n  clover-cd visibility clear --redis redis://127.0.0.1:6379\n  clover-cd visibility collect --sandbox        # keep the stats current from a running sandbox\n",
    );

  vis
    .command('stats')
    .description(
      'print the visibility stats (trace/span/metric counts, response times, URLs, user agents, status codes, node ids)',
    )
    .option('--redis <url>', 'Redis URL (default $CLOVER_CD_REDIS_URL or redis://127.0.0.1:6379)', redisUrl)
    .addHelpText(
      'after',
      "\n--output json prints exactly the shape of Clover's GET /visibility/get/stats/all.\n\nExample:\n  clover-cd visibility stats --output json\n",
    )
    .action(
      action(async (opts: { redis?: string }, cmd: Command) => {
        const { openVisibilityStore } = await import('../../services/redis.js');
        const store = await openVisibilityStore(opts.redis ?? defaultRedis());
        try {
          printResult(globalOptions(cmd).output, await store.read(), renderStats);
        } finally {
          await store.close();
        }
        return 0;
      }),
    );

  vis
    .command('clear')
    .description(
      "reset the visibility stats as Clover's /visibility/clear does (counts to 0, span sets deleted, response times NA)",
    )
    .option('--redis <url>', 'Redis URL (default $CLOVER_CD_REDIS_URL or redis://127.0.0.1:6379)', redisUrl)
    .addHelpText('after', '\nExample:\n  clover-cd visibility clear\n')
    .action(
      action(async (opts: { redis?: string }, cmd: Command) => {
        const { openVisibilityStore } = await import('../../services/redis.js');
        const store = await openVisibilityStore(opts.redis ?? defaultRedis());
        try {
          const r = await store.clear();
          printResult(
            globalOptions(cmd).output,
            r,
            (d) =>
              `cleared ${d.cleared.length} keys; response times of ${d.services.length} services set to NA`,
          );
        } finally {
          await store.close();
        }
        return 0;
      }),
    );

  vis
    .command('collect')
    .description(
      "keep the visibility keys current without the server: poll Jaeger and Prometheus (or a sandbox) every interval, as Clover's collector did",
    )
    .option('--redis <url>', 'Redis URL (default $CLOVER_CD_REDIS_URL or redis://127.0.0.1:6379)', redisUrl)
    .option(
      '--sandbox [state-dir]',
      "read the running sandbox's Jaeger API and /metrics (default state dir $CLOVER_CD_STATE_DIR or ./.clover-cd)",
    )
    .option('--jaeger <url>', 'Jaeger query API, e.g. http://tracing.istio-system:16686')
    .option('--prometheus <url>', 'Prometheus, e.g. http://prometheus.istio-system:9090')
    .option('--interval <seconds>', "Clover's sample_interval", '5')
    .option('--window <seconds>', 'how far back the first cycle reads when nothing was counted yet', '300')
    .option('--once', 'run one cycle and exit', false)
    .addHelpText(
      'after',
      `
Services come from visibility_services (clover-cd sdc / Clover's /visibility/set; every Jaeger service when
empty), metric names from metric_prefixes × services × metric_suffixes. Each cycle adds the traces that
started since the last one; \`visibility clear\` restarts the counts from that moment.

Exit codes: 0 stopped (Ctrl-C) or --once done; 2 bad options; 4 Redis, Jaeger or Prometheus unreachable.

Examples:
  clover-cd visibility collect --sandbox --interval 2
  clover-cd visibility collect --jaeger http://tracing.istio-system:16686 --prometheus http://prometheus.istio-system:9090
  clover-cd visibility collect --sandbox --once -o json
`,
    )
    .action(
      action(
        async (
          o: {
            redis?: string;
            sandbox?: string | boolean;
            jaeger?: string;
            prometheus?: string;
            interval: string;
            window: string;
            once: boolean;
          },
          cmd: Command,
        ) => {
          const { InvalidInputError } = await import('../../util/errors.js');
          const seconds = (v: string, flag: string) => {
            const n = Number(v);
            if (!(n > 0 && n <= 86_400))
              throw new InvalidInputError(`${flag} must be seconds between 0 and 86400, got "${v}"`);
            return n * 1000;
          };
          const intervalMs = seconds(o.interval, '--interval');
          const windowMs = seconds(o.window, '--window');
          let sources: import('../../visibility/collector.js').CollectorSources;
          if (o.sandbox) {
            const { connectSandbox } = await import('../../sandbox/index.js');
            const sb = await connectSandbox(typeof o.sandbox === 'string' ? o.sandbox : undefined);
            sources = {
              jaegerUrl: o.jaeger ?? sb.urls.jaeger,
              ...(o.prometheus ? { prometheusUrl: o.prometheus } : { scrapeUrls: [sb.urls.metrics] }),
            };
          } else {
            if (!o.jaeger)
              throw new InvalidInputError('give --jaeger <url> (and --prometheus <url>), or --sandbox');
            sources = { jaegerUrl: o.jaeger, prometheusUrl: o.prometheus };
          }
          const { startCollector } = await import('../../visibility/collector.js');
          const format = globalOptions(cmd).output;
          const collector = await startCollector({
            redisUrl: o.redis ?? defaultRedis(),
            sources,
            intervalMs,
            windowMs,
            log: (l) => format === 'text' && process.stderr.write(l + '\n'),
          });
          try {
            if (o.once) {
              const r = await collector.cycle();
              printResult(
                format,
                r,
                (d) =>
                  `+${d.traces} traces, +${d.spans} spans, ${d.metrics} metrics${d.skipped ? ` (skipped: ${d.skipped})` : ''}`,
              );
              return 0;
            }
            await new Promise<void>((resolve) => {
              process.once('SIGINT', () => resolve());
              process.once('SIGTERM', () => resolve());
            });
            const st = collector.status();
            printResult(
              format,
              st,
              (d) => `stopped after ${d.cycles} cycles${d.lastError ? `; last error: ${d.lastError}` : ''}`,
            );
            return 0;
          } finally {
            await collector.stop();
          }
        },
      ),
    );
}
