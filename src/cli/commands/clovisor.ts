// Over 400 lines: the clovisor verbs (run, status, cleanup, config) with their help texts, one command group.
import { Option, type Command } from 'commander';
import type { AddressInfo } from 'node:net';
import type { ClovisorConfig, EgressMatch, Target, TracerStatus } from '../../clovisor/index.js';
import { netnsInum } from '../../clovisor/system.js';
import { DEFAULT_PIN_ROOT, writeState } from '../../clovisor/loader.js';
import { InvalidInputError } from '../../util/errors.js';
import { parseDurationMs } from '../../util/units.js';
import { action, globalOptions } from '../context.js';
import { parseUrlFlag } from '../flags.js';
import { note, printResult, table } from '../output.js';

/** The engine behind the verbs, loaded by loadEngine() when one runs: `--help` loads none of it. */
type TClovisorIndex = typeof import('../../clovisor/index.js');
let Tracer: TClovisorIndex['Tracer'],
  cleanupClovisor: TClovisorIndex['cleanupClovisor'],
  kubernetesTargets: TClovisorIndex['kubernetesTargets'],
  loadClovisorConfig: TClovisorIndex['loadClovisorConfig'],
  parseClovisorLabels: TClovisorIndex['parseClovisorLabels'],
  parseEgressMatch: TClovisorIndex['parseEgressMatch'],
  readRedisConfig: TClovisorIndex['readRedisConfig'],
  readState: TClovisorIndex['readState'],
  sandboxTargets: TClovisorIndex['sandboxTargets'],
  serveTracer: TClovisorIndex['serveTracer'],
  spansFromJaegerKey: TClovisorIndex['spansFromJaegerKey'],
  tracerUrl: TClovisorIndex['tracerUrl'];
type TServicesHttp = typeof import('../../services/http.js');
let createHttpClient: TServicesHttp['createHttpClient'];
type TServicesKubernetes = typeof import('../../services/kubernetes.js');
let createKubernetesPlatform: TServicesKubernetes['createKubernetesPlatform'];
async function loadEngine(): Promise<void> {
  const [m0, m1, m2] = await Promise.all([
    import('../../clovisor/index.js'),
    import('../../services/http.js'),
    import('../../services/kubernetes.js'),
  ]);
  ({
    Tracer,
    cleanupClovisor,
    kubernetesTargets,
    loadClovisorConfig,
    parseClovisorLabels,
    parseEgressMatch,
    readRedisConfig,
    readState,
    sandboxTargets,
    serveTracer,
    spansFromJaegerKey,
    tracerUrl,
  } = m0);
  ({ createHttpClient } = m1);
  ({ createKubernetesPlatform } = m2);
}

interface CommonOpts {
  config?: string;
  pinRoot?: string;
  stateDir?: string;
  sandbox?: string | boolean;
  redis?: string;
  kubeconfig?: string;
  spanFormat?: 'otlp' | 'jaeger-thrift';
}

/** Targets from the config file, the sandbox's --netns workloads and Clovisor's Redis keys, merged. */
async function resolveConfig(o: CommonOpts): Promise<{
  config: ClovisorConfig;
  targets: Target[];
  spansUrl?: string;
  spansFormat?: 'otlp' | 'jaeger-thrift';
  egressMatch: EgressMatch[];
  sources: string[];
}> {
  const config = o.config ? loadClovisorConfig(o.config) : {};
  const targets: Target[] = [...(config.targets ?? [])];
  const sources: string[] = [];
  if (o.config) sources.push(`config ${o.config}`);
  if (o.sandbox) {
    const dir = typeof o.sandbox === 'string' ? o.sandbox : undefined;
    const st = sandboxTargets(dir);
    if (!st.length)
      note(
        `sandbox${dir ? ` at ${dir}` : ''}: no --netns workloads found (start it with: clover-cd sandbox up --netns --detach)`,
      );
    targets.push(...st);
    sources.push('sandbox');
  }
  let spansUrl = config.spans?.url;
  let spansFormat = o.spanFormat ?? config.spans?.format;
  const redisUrl = o.redis ?? config.redis?.url;
  const egressMatch = parseEgressMatch(config.egressMatch ?? []);
  if (redisUrl) {
    const r = await readRedisConfig(redisUrl);
    egressMatch.push(...r.egress);
    sources.push(
      `redis (clovisor_labels: ${r.labels.map((l) => l.namespace + (l.labelSelector ? `:${l.labelSelector}` : '')).join(', ')})`,
    );
    if (!spansUrl) {
      // Clovisor sent Thrift to the collector's /api/traces; --span-format otlp sends OTLP to :4318 of that host.
      const fromKey = spansFromJaegerKey(r.jaeger.collector, spansFormat);
      spansUrl = fromKey?.url;
      spansFormat = fromKey?.format ?? spansFormat;
    }
    if (o.sandbox) {
      // With the sandbox, clovisor_labels select among its workloads (namespace; label app / version) instead of pods.
      const keep = (t: Target) =>
        r.labels.some((l) => {
          if ((t.namespace ?? 'default') !== l.namespace) return false;
          if (!l.labelSelector) return true;
          const [k, v] = l.labelSelector.split('=');
          return k === 'version' ? t.version === v : k === 'app' ? (t.service ?? t.workload) === v : false;
        });
      const kept = targets.filter(keep);
      targets.length = 0;
      targets.push(...kept);
    } else if (!config.kubernetes)
      config.kubernetes = {
        labels: r.labels.map((l) =>
          l.labelSelector ? `${l.namespace}:${l.labelSelector.replace('=', ':')}` : l.namespace,
        ),
      };
  }
  if (config.kubernetes) {
    // Pods of this node (MY_NODE_NAME), selected as Clovisor does; netns and veth found through /proc and iflink.
    const platform = createKubernetesPlatform({ kubeconfig: o.kubeconfig });
    const selection = parseClovisorLabels(config.kubernetes.labels);
    const pods = await kubernetesTargets(platform, selection, {
      versionLabel: config.kubernetes.versionLabel,
      packetTier: config.kubernetes.packetTier,
    });
    targets.push(...pods);
    sources.push(`kubernetes (${pods.length} pods on ${process.env.MY_NODE_NAME ?? 'any node'})`);
  }
  return {
    config,
    targets,
    spansUrl,
    spansFormat: spansUrl ? (spansFormat ?? 'otlp') : undefined,
    egressMatch,
    sources,
  };
}

const common = (cmd: Command) =>
  cmd
    .option('-c, --config <file>', 'clovisor config file (targets, spans, listen)')
    .option('--sandbox [stateDir]', "trace the sandbox's --netns workloads")
    .option(
      '--redis <url>',
      "read Clovisor's Redis keys (clovisor_labels, clovisor_egress_match, clovisor_jaeger_collector); with --sandbox the labels select sandbox workloads",
      (v: string) => parseUrlFlag('--redis', v, ['redis:', 'rediss:']),
    )
    .addOption(
      new Option(
        '--span-format <format>',
        "spans as Jaeger Thrift over HTTP (Clovisor's, collector :14268 /api/traces) or OTLP/HTTP (:4318 /v1/traces); default: jaeger-thrift for clovisor_jaeger_collector, otlp for spans.url",
      ).choices(['otlp', 'jaeger-thrift']),
    )
    .option(
      '--kubeconfig <file>',
      'kubeconfig for pod selection (default: $KUBECONFIG, ~/.kube/config, in-cluster)',
    )
    .option('--pin-root <path>', 'bpffs directory for pinned programs, maps and links', DEFAULT_PIN_ROOT)
    .option(
      '--state-dir <dir>',
      'where the loader records what it attached (default /run/clover-cd/clovisor)',
    );

function renderStatus(s: TracerStatus): string {
  const rows = s.targets.map((t) => [
    t.workload,
    t.version,
    t.namespace,
    t.netns,
    t.attached.socket ? 'yes' : 'no',
    t.hostVeth ? `${t.hostVeth}${t.attached.packet ? '' : ' (off)'}` : '-',
  ]);
  const k = s.lost.kernel;
  return [
    `clovisor ${s.running ? 'running' : 'stopped'} at ${s.pinRoot}: ${s.links.length} tracepoints attached`,
    table(['WORKLOAD', 'VERSION', 'NAMESPACE', 'NETNS', 'SOCKET', 'PACKET'], rows),
    `records ${s.records} (drained: ${s.drained.sessions} sessions, ${s.drained.flows} flows; ${s.flowsOpen} flows open)`,
    `lost: ${s.lost.readerEvents} by reader, ${k.eventsLost} perf ring, ${k.connsFull} conns map full, ${k.flowsFull} flows map full (${s.lost.beforeReader} before the reader started)`,
    ...(s.spans ? [`spans: ${s.spans.exported} exported, ${s.spans.failed} failed`] : []),
  ].join('\n');
}

export function register(program: Command): void {
  const clovisor = program
    .command('clovisor')
    .description('eBPF L3/L4 session tracer: resets, retransmits, failed connects per workload and version')
    .addHelpText(
      'after',
      '\nExamples:\n  sudo clover-cd clovisor run -c clovisor.yaml --listen 127.0.0.1:9464\n  sudo clover-cd clovisor run --sandbox --packet-tier --duration 2m\n  clover-cd clovisor status\n  sudo clover-cd clovisor cleanup\n  clover-cd clovisor config -c clovisor.yaml --redis redis://redis.clovisor:6379\n\nExit 4 with the reason when eBPF is unavailable (not root, no bpffs, no BTF, object not built).\n',
    );

  common(clovisor.command('run'))
    .description(
      'load the BPF object, attach to the targets, drain sessions until stopped (SIGINT/SIGTERM) or --duration',
    )
    .option(
      '--listen <host:port>',
      'serve /metrics, /api/v1/status and /api/v1/evidence here (port 0: a free one, printed)',
    )
    .option('--duration <d>', 'stop after this long (e.g. 90s); default: until interrupted')
    .option('--all-namespaces', 'trace every network namespace, not only the targets', false)
    .option(
      '--packet-tier',
      'also attach the packet tier (tc on the host veth) to every target that has one',
      false,
    )
    .option('--object <file>', 'the compiled BPF object (default build/clovisor/clovisor.bpf.o)')
    .option(
      '--keep',
      'leave programs and filters attached when stopping (clean up later with clovisor cleanup)',
      false,
    )
    .addHelpText(
      'after',
      '\nExample:\n  sudo clover-cd clovisor run -c clovisor.yaml --listen 127.0.0.1:9464 --duration 5m\n',
    )
    .action(
      action(
        async (
          o: CommonOpts & {
            listen?: string;
            duration?: string;
            allNamespaces: boolean;
            packetTier: boolean;
            keep: boolean;
            object?: string;
          },
          cmd: Command,
        ) => {
          await loadEngine();
          const { config, targets, spansUrl, spansFormat, egressMatch, sources } = await resolveConfig(o);
          if (o.packetTier) for (const t of targets) if (t.hostVeth) t.packetTier = true;
          if (!targets.length && !o.allNamespaces)
            throw new InvalidInputError(
              'no targets: give --config with targets, --sandbox, or --all-namespaces',
            );
          const listen = o.listen ?? config.listen;
          const tracer = new Tracer({
            pinRoot: o.pinRoot ?? config.pinRoot,
            stateDir: o.stateDir,
            object: o.object,
            targets,
            allNamespaces: o.allNamespaces,
            spansUrl,
            spansFormat,
            egressMatch,
            session: config.spans,
            drainIntervalMs: config.drainInterval ? parseDurationMs(config.drainInterval) : undefined,
          });
          await tracer.start();
          note(
            `clovisor: tracing ${targets.length} workloads from ${sources.join(', ') || 'all namespaces'}`,
          );
          if (listen) {
            const [host, port] = [
              listen.slice(0, listen.lastIndexOf(':')),
              Number(listen.slice(listen.lastIndexOf(':') + 1)),
            ];
            const server = await serveTracer(tracer, host, port);
            // Port 0 picks a free one: the state and the note say which, so nothing has to guess a free port.
            const bound = `${host}:${(server.address() as AddressInfo).port}`;
            const st = readState(tracer.pinRoot, o.stateDir);
            if (st) writeState({ ...st, listen: bound } as typeof st, o.stateDir);
            note(`clovisor: http://${bound}/metrics, /api/v1/evidence`);
          }
          await new Promise<void>((resolve) => {
            const done = () => resolve();
            process.once('SIGINT', done);
            process.once('SIGTERM', done);
            if (o.duration) setTimeout(done, parseDurationMs(o.duration));
          });
          await tracer.drain();
          const status = tracer.status();
          const report = await tracer.stop({ cleanup: !o.keep });
          printResult(
            globalOptions(cmd).output,
            { ...status, cleanup: report },
            (d) =>
              renderStatus(d) +
              (d.cleanup ? `\ncleaned up: ${d.cleanup.removed.length} objects` : '\nleft attached (--keep)'),
          );
          process.exit(0); // the HTTP server and the perf reader hold the loop open
        },
      ),
    );

  clovisor
    .command('status')
    .description('what is loaded and attached, records drained, events lost')
    .option('--pin-root <path>', 'bpffs directory of the tracer', DEFAULT_PIN_ROOT)
    .option('--state-dir <dir>', 'loader state directory')
    .addHelpText('after', '\nExample:\n  clover-cd clovisor status -o json\n')
    .action(
      action(async (o: { pinRoot: string; stateDir?: string }, cmd: Command) => {
        await loadEngine();
        const url = tracerUrl(o.pinRoot, o.stateDir);
        const fmt = globalOptions(cmd).output;
        if (url) {
          const r = await createHttpClient({
            system: 'clovisor',
            baseURL: url,
            timeoutMs: 5000,
            retry: { attempts: 1 },
          })
            .get<TracerStatus>('/api/v1/status')
            .catch(() => undefined);
          if (r?.status === 200) {
            printResult(fmt, r.data, renderStatus);
            return 0;
          }
        }
        const st = readState(o.pinRoot, o.stateDir);
        const data = {
          pinRoot: o.pinRoot,
          loaded: Boolean(st),
          links: st?.links ?? [],
          veths: st?.veths ?? [],
          netns: st?.netns ?? [],
          reader: url ? `not answering at ${url}` : 'none',
        };
        printResult(fmt, data, (d) =>
          d.loaded
            ? `clovisor loaded at ${d.pinRoot} (reader: ${d.reader}): ${d.links.length} tracepoints, ${d.veths.length} veths (${d.veths.map((v) => v.dev).join(', ') || 'none'}); remove with: clover-cd clovisor cleanup`
            : `clovisor is not loaded at ${d.pinRoot}`,
        );
        return 0;
      }),
    );

  clovisor
    .command('cleanup')
    .description("remove clovisor's filters, the qdiscs it created, and its pinned links, programs and maps")
    .option('--pin-root <path>', 'bpffs directory of the tracer', DEFAULT_PIN_ROOT)
    .option('--state-dir <dir>', 'loader state directory')
    .addHelpText(
      'after',
      "\nOnly what clovisor created is removed: other tools' qdiscs and filters stay.\n\nExample:\n  sudo clover-cd clovisor cleanup\n",
    )
    .action(
      action(async (o: { pinRoot: string; stateDir?: string }, cmd: Command) => {
        await loadEngine();
        const report = await cleanupClovisor({ pinRoot: o.pinRoot, stateDir: o.stateDir });
        printResult(globalOptions(cmd).output, report, (d) =>
          [
            `cleaned ${d.pinRoot}: removed ${d.removed.length}`,
            ...d.removed.map((x) => `  - ${x}`),
            ...d.kept.map((x) => `  kept ${x}`),
          ].join('\n'),
        );
        return 0;
      }),
    );

  common(clovisor.command('config'))
    .description(
      'show the effective configuration: targets with their network namespaces, span endpoint, sources',
    )
    .addHelpText('after', '\nExample:\n  clover-cd clovisor config -c clovisor.yaml -o yaml\n')
    .action(
      action(async (o: CommonOpts, cmd: Command) => {
        await loadEngine();
        const { config, targets, spansUrl, spansFormat, egressMatch, sources } = await resolveConfig(o);
        const resolved = targets.map((t) => {
          let inum: number | string;
          try {
            inum = netnsInum(t.netns);
          } catch {
            inum = 'missing';
          }
          return { ...t, netnsInum: inum };
        });
        const data = {
          sources,
          pinRoot: o.pinRoot ?? config.pinRoot ?? DEFAULT_PIN_ROOT,
          spans: spansUrl,
          spansFormat,
          listen: config.listen,
          kubernetes: config.kubernetes,
          egressMatch,
          targets: resolved,
        };
        printResult(globalOptions(cmd).output, data, (d) =>
          [
            `sources: ${d.sources.join(', ') || '(none)'}`,
            `pin root: ${d.pinRoot}; spans: ${d.spans ? `${d.spans} (${d.spansFormat})` : 'off'}; listen: ${d.listen ?? 'off'}`,
            `egress match: ${d.egressMatch.map((e) => `${e.ip}:${e.port}${e.protocol ? `/${e.protocol}` : ''}${e.podPrefix ? `:${e.podPrefix}` : ''}`).join(', ') || 'off (every outbound connection)'}`,
            table(
              ['WORKLOAD', 'VERSION', 'NAMESPACE', 'NETNS', 'INUM', 'VETH'],
              d.targets.map((t) => [
                t.workload,
                t.version,
                t.namespace,
                t.netns,
                String(t.netnsInum),
                t.hostVeth ?? '-',
              ]),
            ),
          ].join('\n'),
        );
        return 0;
      }),
    );
}
