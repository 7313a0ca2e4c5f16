/**
 * The edge of clovisor: child processes (`bpftool`, `tc`, `ip`, `nsenter`, the tracepoint helper) and the
 * pre-flight checks that say, as an exit-4 error, why eBPF cannot run here.
 */
import { execFile, spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { InfrastructureError } from '../util/errors.js';

export const BUILD_DIR = fileURLToPath(new URL('../../build/clovisor/', import.meta.url));
export const DEFAULT_OBJECT = `${BUILD_DIR}clovisor.bpf.o`;
export const DEFAULT_HELPER = `${BUILD_DIR}clovisor-tp-attach`;
/** Perf-array reader that also drains rings whose wakeup is late (bpf/event-pipe.c); bpftool's event_pipe otherwise. */
export const DEFAULT_READER = `${BUILD_DIR}clovisor-events`;
export const BPFFS = '/sys/fs/bpf';
export const TRACEFS = '/sys/kernel/tracing';

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command with a timeout; failure becomes an InfrastructureError naming the command and its stderr. */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; system?: string; hint?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 15_000, maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const why = (stderr || err.message).trim().split('\n').slice(-3).join('; ');
          reject(new InfrastructureError(opts.system ?? cmd, `${cmd} ${args.join(' ')}`, why, opts.hint));
        } else resolve({ stdout, stderr });
      },
    );
  });
}

/** Like run() but a failure is returned, not thrown (for idempotent steps such as "add qdisc if absent"). */
export async function tryRun(
  cmd: string,
  args: string[],
  timeoutMs = 15_000,
): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const r = await run(cmd, args, { timeoutMs });
    return { ok: true, ...r };
  } catch (e) {
    return { ok: false, stdout: '', stderr: e instanceof Error ? e.message : String(e) };
  }
}

/** `tc` in another network namespace: `nsenter --net=` only, because `ip netns exec` / `tc -n` remount /sys. */
export function inNetns(netns: string | undefined, cmd: string, args: string[]): [string, string[]] {
  return netns ? ['nsenter', [`--net=${netns}`, cmd, ...args]] : [cmd, args];
}

/** Resolves a namespace name ("clv-a") or path to a path. */
export function netnsPath(nameOrPath: string): string {
  return nameOrPath.includes('/') ? nameOrPath : `/var/run/netns/${nameOrPath}`;
}

/** The namespace's inode number, which is what the kernel reports as the socket's netns. */
export function netnsInum(nameOrPath: string): number {
  return statSync(netnsPath(nameOrPath)).ino;
}

function isMounted(path: string, fstype: string): boolean {
  try {
    return readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .some((l) => {
        const f = l.split(' ');
        return f[1] === path && f[2] === fstype;
      });
  } catch {
    return false;
  }
}

export interface Preflight {
  object: string;
  helper: string;
  bpffs: string;
  tracefs: string;
  mounted: string[];
}

/**
 * Checks everything the tracer needs and mounts bpffs / tracefs when absent. Throws InfrastructureError
 * (exit 4) with the reason: not root, no object (clang missing at setup), no bpftool, no hook in the kernel.
 */
export async function preflight(
  opts: { object?: string; helper?: string; mount?: boolean } = {},
): Promise<Preflight> {
  const object = opts.object ?? DEFAULT_OBJECT;
  const helper = opts.helper ?? DEFAULT_HELPER;
  const fail = (target: string, why: string, hint: string) =>
    new InfrastructureError('eBPF', target, why, hint);
  if (process.getuid?.() !== 0)
    throw fail(
      'privileges',
      'clovisor needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN, CAP_SYS_ADMIN)',
      'run as root, or as the privileged DaemonSet in deploy/clovisor/',
    );
  if (!existsSync(object))
    throw fail(
      object,
      'the BPF object has not been built',
      'install clang llvm bpftool libbpf-dev, then run bash scripts/setup.d/clovisor.sh',
    );
  if (!existsSync(helper))
    throw fail(
      helper,
      'the tracepoint attach helper has not been built',
      'run bash scripts/setup.d/clovisor.sh (needs clang and libbpf-dev)',
    );
  await run('bpftool', ['version'], { system: 'eBPF', hint: 'install bpftool (Debian package bpftool)' });
  if (!existsSync('/sys/kernel/btf/vmlinux'))
    throw fail(
      '/sys/kernel/btf/vmlinux',
      'the kernel has no BTF',
      'a kernel built with CONFIG_DEBUG_INFO_BTF=y is needed for CO-RE',
    );
  const mounted: string[] = [];
  if (!isMounted(BPFFS, 'bpf')) {
    if (opts.mount === false) throw fail(BPFFS, 'bpffs is not mounted', `mount -t bpf bpf ${BPFFS}`);
    await run('mount', ['-t', 'bpf', 'bpf', BPFFS], {
      system: 'eBPF',
      hint: `mount -t bpf bpf ${BPFFS} (DaemonSet: hostPath ${BPFFS})`,
    });
    mounted.push(BPFFS);
  }
  if (!isMounted(TRACEFS, 'tracefs')) {
    if (opts.mount === false)
      throw fail(TRACEFS, 'tracefs is not mounted', `mount -t tracefs tracefs ${TRACEFS}`);
    await run('mount', ['-t', 'tracefs', 'tracefs', TRACEFS], {
      system: 'eBPF',
      hint: `mount -t tracefs tracefs ${TRACEFS}`,
    });
    mounted.push(TRACEFS);
  }
  for (const tp of TRACEPOINTS) {
    if (!existsSync(`${TRACEFS}/events/${tp.event}/id`))
      throw fail(
        `tracepoint ${tp.event}`,
        'the kernel does not have this tracepoint',
        'a kernel >= 4.16 with CONFIG_BPF_EVENTS is needed',
      );
  }
  try {
    accessSync(BPFFS, constants.W_OK);
  } catch {
    throw fail(BPFFS, 'bpffs is not writable', 'run as root with /sys/fs/bpf mounted read-write');
  }
  return { object, helper, bpffs: BPFFS, tracefs: TRACEFS, mounted };
}

/** Socket-tier programs of the object and the tracepoints they attach to. */
export const TRACEPOINTS = [
  { prog: 'tp_inet_sock_set_state', event: 'sock/inet_sock_set_state' },
  { prog: 'tp_tcp_retransmit_skb', event: 'tcp/tcp_retransmit_skb' },
  { prog: 'tp_tcp_send_reset', event: 'tcp/tcp_send_reset' },
  { prog: 'tp_tcp_receive_reset', event: 'tcp/tcp_receive_reset' },
] as const;

/**
 * A reader of a pinned perf array: clovisor-events when built (it consumes every ring each 50 ms and says
 * `{"ready":true}` once its rings are open), else `bpftool map event_pipe` unbuffered.
 */
export function spawnReader(
  perfArray: string,
  reader = DEFAULT_READER,
): { child: ChildProcessByStdio<null, Readable, Readable>; kind: string } {
  if (existsSync(reader))
    return {
      child: spawn(reader, [perfArray], { stdio: ['ignore', 'pipe', 'pipe'] }),
      kind: 'clovisor-events',
    };
  return {
    child: spawn('stdbuf', ['-o0', 'bpftool', '-j', 'map', 'event_pipe', 'pinned', perfArray], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    kind: 'bpftool event_pipe',
  };
}
