import type { Command } from 'commander';
import type { CloverStatsAll } from '../../services/redis.js';
import { action, globalOptions } from '../context.js';
import { printResult, table } from '../output.js';

const defaultRedis = () => process.env.CLOVER_CD_REDIS_URL ?? 'redis://127.0.0.1:6379';

function renderStats(s: CloverStatsAll): string {
  const top = (pairs: Array<[string, number]>) => [...pairs].reverse().slice(0, 10).map(([k, n]) => [k, n]);
  return [
    `traces ${s.trace_count ?? 'n/a'}   spans ${s.span_count ?? 'n/a'}   metrics ${s.metric_count ?? 'n/a'}`,
    '',
    table(['service', 'min ms', 'avg ms', 'max ms'], s.response_times.map((r) => [r.name, r.min ?? 'n/a', r.avg ?? 'n/a', r.max ?? 'n/a'])),
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
    .addHelpText('after', '\nExamples:\n  clover-cd visibility stats --output json      # the JSON of Clover\'s /visibility/get/stats/all\n  clover-cd visibility clear --redis redis://127.0.0.1:6379\n');

  vis
    .command('stats')
    .description("print the visibility stats (trace/span/metric counts, response times, URLs, user agents, status codes, node ids)")
    .option('--redis <url>', 'Redis URL (default $CLOVER_CD_REDIS_URL or redis://127.0.0.1:6379)')
    .addHelpText('after', '\n--output json prints exactly the shape of Clover\'s GET /visibility/get/stats/all.\n\nExample:\n  clover-cd visibility stats --output json\n')
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
    .description("reset the visibility stats as Clover's /visibility/clear does (counts to 0, span sets deleted, response times NA)")
    .option('--redis <url>', 'Redis URL (default $CLOVER_CD_REDIS_URL or redis://127.0.0.1:6379)')
    .addHelpText('after', '\nExample:\n  clover-cd visibility clear\n')
    .action(
      action(async (opts: { redis?: string }, cmd: Command) => {
        const { openVisibilityStore } = await import('../../services/redis.js');
        const store = await openVisibilityStore(opts.redis ?? defaultRedis());
        try {
          const r = await store.clear();
          printResult(globalOptions(cmd).output, r, (d) => `cleared ${d.cleared.length} keys; response times of ${d.services.length} services set to NA`);
        } finally {
          await store.close();
        }
        return 0;
      }),
    );
}
