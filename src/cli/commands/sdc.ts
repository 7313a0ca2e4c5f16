import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import * as yaml from 'js-yaml';
import { InvalidInputError } from '../../util/errors.js';
import { action, globalOptions } from '../context.js';
import { printResult } from '../output.js';

/**
 * cloverctl's SDC verbs on the SDC control API: `set lb|server -f`, `create idsrules -f`, `start|stop ids`.
 * The files are Clover's own (examples/clover/), read unchanged.
 */
interface TargetOptions {
  platform: 'sandbox' | 'kubernetes';
  grpc?: string;
  stateDir?: string;
}

const EXIT_CODES =
  '\nExit codes: 0 done; 2 invalid file, unknown workload or service (nothing changed); 4 the SDC control API is unreachable.\n';

function targetOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--platform <kind>',
        "sandbox: the running `clover-cd sandbox up`; kubernetes: the workload's own gRPC port, as Clover dialled it",
      )
        .choices(['sandbox', 'kubernetes'])
        .default('sandbox'),
    )
    .option('--grpc <host:port>', 'SDC control API address (overrides --platform)')
    .option('--state-dir <dir>', 'sandbox state directory (default $CLOVER_CD_STATE_DIR or ./.clover-cd)');
}

function readDoc(file: string): unknown {
  try {
    return yaml.load(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new InvalidInputError(`${file}: cannot read YAML: ${(err as Error).message}`);
  }
}

/** The address to dial: --grpc, the sandbox's control endpoint, or Clover's in-cluster convention. */
async function address(o: TargetOptions, clusterDefault: string): Promise<string> {
  if (o.grpc) return o.grpc;
  if (o.platform === 'kubernetes') return clusterDefault;
  const { readState, defaultStateDir } = await import('../../sandbox/index.js');
  const dir = o.stateDir ? resolve(o.stateDir) : defaultStateDir();
  const s = readState(dir);
  if (!s) {
    const { InfrastructureError } = await import('../../util/errors.js');
    throw new InfrastructureError(
      'sandbox',
      dir,
      'no sandbox is running',
      'start one with: clover-cd sandbox up --detach, or pass --platform kubernetes / --grpc',
    );
  }
  return s.urls.grpc.replace(/^[a-z]+:\/\//, '');
}

async function withClient<T>(
  addr: string,
  fn: (c: import('../../services/sdc.js').SdcClient) => Promise<T>,
): Promise<T> {
  const { createSdcClient } = await import('../../services/sdc.js');
  const client = createSdcClient(addr);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export function register(program: Command): void {
  const sdc = program
    .command('sdc')
    .description(
      "control the SDC sample's services with cloverctl's verbs and Clover's YAML files (lb backends, server routes, IDS rules)",
    )
    .addHelpText(
      'after',
      `
Examples:
  clover-cd sdc set lb -f examples/clover/lbv2.yaml              http-lb-v2 balances over clover-server4/5
  clover-cd sdc set server -f examples/clover/server.yaml        clover-server1's locations and files
  clover-cd sdc create idsrules -f examples/clover/idsrule_scan.yaml
  clover-cd sdc stop ids && clover-cd sdc start ids
  clover-cd sdc set lb -f lbv2.yaml --platform kubernetes        dials lb_name:50054 (http-lb-v2.default:50054)
${EXIT_CODES}`,
    );
  const set = sdc.command('set').description('change an lb or server (cloverctl set lb|server)');
  const create = sdc.command('create').description('add IDS rules (cloverctl create idsrules)');
  const start = sdc.command('start').description('start the IDS (cloverctl start ids)');
  const stop = sdc.command('stop').description('stop the IDS (cloverctl stop ids)');

  targetOptions(
    set
      .command('lb')
      .description("replace an lb's backends from Clover's lbv*.yaml (server_name, lb_list[].url)")
      .requiredOption('-f, --file <file>', "Clover's lb YAML"),
  )
    .addHelpText(
      'after',
      `\nExamples:\n  clover-cd sdc set lb -f examples/clover/lbv2.yaml\n  clover-cd sdc set lb -f lbv1.yaml --grpc 10.0.0.12:50054\n${EXIT_CODES}`,
    )
    .action(
      action(async (o: TargetOptions & { file: string }, cmd: Command) => {
        const { parseCloverLb, applyCloverLb, clusterAddress } = await import('../../services/sdc-clover.js');
        const change = parseCloverLb(readDoc(o.file), o.file);
        const r = await withClient(await address(o, clusterAddress('nginx', change.grpcHost)), (c) =>
          applyCloverLb(c, change),
        );
        printResult(
          globalOptions(cmd).output,
          { workload: change.workload, backends: r.backends, message: r.message, ignored: change.ignored },
          (d) => `${d.message}: ${d.workload} → ${d.backends.join(', ')}`,
        );
        return 0;
      }),
    );

  targetOptions(
    set
      .command('server')
      .description("replace a server's routes from Clover's server.yaml (locations[], files[])")
      .requiredOption('-f, --file <file>', "Clover's server YAML"),
  )
    .addHelpText(
      'after',
      `\nExample:\n  clover-cd sdc set server -f examples/clover/server.yaml\n${EXIT_CODES}`,
    )
    .action(
      action(async (o: TargetOptions & { file: string }, cmd: Command) => {
        const { parseCloverServer, applyCloverServer, clusterAddress } =
          await import('../../services/sdc-clover.js');
        const change = parseCloverServer(readDoc(o.file), o.file);
        const r = await withClient(await address(o, clusterAddress('nginx', change.grpcHost)), (c) =>
          applyCloverServer(c, change),
        );
        printResult(
          globalOptions(cmd).output,
          { workload: change.workload, routes: r.routes, message: r.message, ignored: change.ignored },
          (d) =>
            [
              `${d.message}: ${d.workload}`,
              ...d.routes.map((x) => `  ${x.prefix ? 'prefix' : 'exact '} ${x.path} → ${x.status}`),
            ].join('\n'),
        );
        return 0;
      }),
    );

  targetOptions(
    create
      .command('idsrules')
      .description(
        "add a Snort rule from Clover's idsrule_*.yaml (sid, protocol, msg, content, rev, ports, ips)",
      )
      .requiredOption('-f, --file <file>', "Clover's IDS rule YAML"),
  )
    .addHelpText(
      'after',
      `\nThe rule applies to traffic mirrored to snort-ids from then on; alerts go to Redis (snort_events, snort_event:<id>).\n\nExample:\n  clover-cd sdc create idsrules -f examples/clover/idsrule_scan.yaml\n${EXIT_CODES}`,
    )
    .action(
      action(async (o: TargetOptions & { file: string }, cmd: Command) => {
        const { parseCloverIdsRule, addCloverIdsRule, clusterAddress } =
          await import('../../services/sdc-clover.js');
        const rule = parseCloverIdsRule(readDoc(o.file), o.file);
        const r = await withClient(await address(o, clusterAddress('ids')), (c) => addCloverIdsRule(c, rule));
        printResult(
          globalOptions(cmd).output,
          { sid: rule.sid, message: r.message, rules: r.ruleText },
          (d) => `${d.message}: ${d.rules.find((t) => t.includes(`sid:${d.sid};`)) ?? d.sid}`,
        );
        return 0;
      }),
    );

  for (const [parent, verb] of [
    [start, 'start'],
    [stop, 'stop'],
  ] as const) {
    targetOptions(
      parent
        .command('ids')
        .description(
          `${verb} inspecting mirrored traffic (Clover's ${verb === 'start' ? 'StartSnort' : 'StopSnort, which also cleared its logs'})`,
        ),
    )
      .addHelpText('after', `\nExample:\n  clover-cd sdc ${verb} ids\n${EXIT_CODES}`)
      .action(
        action(async (o: TargetOptions, cmd: Command) => {
          const m = await import('../../services/sdc-clover.js');
          const r = await withClient(await address(o, m.clusterAddress('ids')), (c) =>
            verb === 'start' ? m.startCloverIds(c) : m.stopCloverIds(c),
          );
          printResult(globalOptions(cmd).output, r, (d) => d.message);
          return 0;
        }),
      );
  }
}
