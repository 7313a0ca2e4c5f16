/**
 * Loading and attaching, through `bpftool`, `tc` and the tracepoint helper, and the exact undo of it.
 *
 * Layout under the pin root (default /sys/fs/bpf/clover-cd):  prog/<program>  maps/<map>  link/<program>.
 * Removing a link pin detaches its tracepoint; removing the root frees programs and maps.
 * Packet tier: `tc qdisc add clsact` only when absent (and then recorded as ours), filters with clovisor's own
 * prio + handle, removed by prio + handle; a qdisc is deleted only when clovisor created it and it is empty.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import { InfrastructureError } from '../util/errors.js';
import { DEFAULT_HELPER, DEFAULT_OBJECT, TRACEFS, TRACEPOINTS, inNetns, run, tryRun } from './system.js';
import type { Target } from './types.js';

export const DEFAULT_PIN_ROOT = '/sys/fs/bpf/clover-cd';
export const DEFAULT_STATE_DIR = process.env.CLOVISOR_STATE_DIR ?? '/run/clover-cd/clovisor';
/** tc filter priority and handle that mark clovisor's filters (and only them). */
export const FILTER_PRIO = 0xc01;
export const FILTER_HANDLE = '0xc10';

export interface VethAttachment {
  dev: string;
  hostNetns?: string;
  /** clovisor added the clsact qdisc (so it may delete it when no other filter remains). */
  createdQdisc: boolean;
  workload: string;
  version: string;
}

export interface LoaderState {
  pinRoot: string;
  object: string;
  loadedAt: number;
  pid?: number;
  links: Array<{ tracepoint: string; link: string; linkId: number; progId: number }>;
  veths: VethAttachment[];
  netns: number[];
  /** Keys (hex) written to `egress_match`. */
  egress?: string[];
}

export function statePath(pinRoot: string, stateDir = DEFAULT_STATE_DIR): string {
  return join(stateDir, `${basename(pinRoot)}.json`);
}

export function readState(pinRoot: string, stateDir?: string): LoaderState | undefined {
  const p = statePath(pinRoot, stateDir);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as LoaderState) : undefined;
}

export function writeState(state: LoaderState, stateDir?: string): void {
  const p = statePath(state.pinRoot, stateDir);
  mkdirSync(dirname(p), { recursive: true });
  // Whole or not at all: `clovisor cleanup` in another process may read it now.
  writeFileAtomic.sync(p, JSON.stringify(state, null, 2));
}

const bpftool = (args: string[], hint?: string) => run('bpftool', args, { system: 'bpftool', hint });

/** Loads the object (programs + maps pinned) and attaches the socket tier; reuses a load already pinned. */
export async function loadAndAttach(opts: {
  pinRoot?: string;
  object?: string;
  helper?: string;
  stateDir?: string;
}): Promise<LoaderState> {
  const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
  const object = opts.object ?? DEFAULT_OBJECT;
  const existing = readState(pinRoot, opts.stateDir);
  if (existing && existsSync(join(pinRoot, 'maps', 'events')) && existing.links.length === TRACEPOINTS.length)
    return existing;
  if (existsSync(pinRoot)) rmSync(pinRoot, { recursive: true, force: true }); // a half-done load of our own
  mkdirSync(join(pinRoot, 'link'), { recursive: true });
  try {
    await bpftool(
      ['prog', 'loadall', object, join(pinRoot, 'prog'), 'pinmaps', join(pinRoot, 'maps')],
      'the verifier log above; kernel >= 5.8 with BTF',
    );
    const args = [TRACEFS];
    for (const tp of TRACEPOINTS)
      args.push(join(pinRoot, 'prog', tp.prog), tp.event, join(pinRoot, 'link', tp.prog));
    const out = await run(opts.helper ?? DEFAULT_HELPER, args, {
      system: 'eBPF tracepoints',
      hint: 'tracefs mounted and CONFIG_BPF_EVENTS',
    });
    const links = out.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as LoaderState['links'][number]);
    const state: LoaderState = {
      pinRoot,
      object,
      loadedAt: Date.now(),
      pid: process.pid,
      links,
      veths: [],
      netns: [],
    };
    writeState(state, opts.stateDir);
    return state;
  } catch (e) {
    rmSync(pinRoot, { recursive: true, force: true });
    throw e;
  }
}

function hex(buf: Buffer): string {
  return [...buf].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** Restricts the socket tier to these network namespaces (empty list: trace every namespace). */
export async function setNetnsFilter(state: LoaderState, inums: number[], stateDir?: string): Promise<void> {
  const maps = join(state.pinRoot, 'maps');
  const lines: string[] = [];
  for (const inum of inums) {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(inum >>> 0);
    lines.push(`map update pinned ${maps}/netns_filter key hex ${hex(k)} value hex 01`);
  }
  for (const old of state.netns.filter((n) => !inums.includes(n))) {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(old >>> 0);
    lines.push(`map delete pinned ${maps}/netns_filter key hex ${hex(k)}`);
  }
  lines.push(
    `map update pinned ${maps}/filter_on key hex 00 00 00 00 value hex 0${inums.length ? 1 : 0} 00 00 00`,
  );
  await bpftoolBatch(lines);
  state.netns = inums;
  writeState(state, stateDir);
}

/**
 * Restricts outbound connections (socket tier) to `clovisor_egress_match`: `struct egress_key { netns, addr, port }`
 * per entry, netns 0 for an entry that applies to every target, addr 0 for "any address". `on` false (no entries)
 * turns the restriction off: every outbound connection is traced.
 */
export async function setEgressMatch(
  state: LoaderState,
  keys: Array<{ netns: number; ip: string; port: number }>,
  on: boolean,
  stateDir?: string,
): Promise<void> {
  const maps = join(state.pinRoot, 'maps');
  const hexKeys = [
    ...new Set(
      keys.map((k) => {
        const b = Buffer.alloc(12);
        b.writeUInt32LE(k.netns >>> 0, 0);
        k.ip.split('.').forEach((o, i) => b.writeUInt8(Number(o) & 255, 4 + i));
        b.writeUInt16LE(k.port, 8);
        return hex(b);
      }),
    ),
  ];
  const lines = hexKeys.map((k) => `map update pinned ${maps}/egress_match key hex ${k} value hex 01`);
  for (const old of (state.egress ?? []).filter((k) => !hexKeys.includes(k)))
    lines.push(`map delete pinned ${maps}/egress_match key hex ${old}`);
  lines.push(`map update pinned ${maps}/filter_on key hex 01 00 00 00 value hex 0${on ? 1 : 0} 00 00 00`);
  await bpftoolBatch(lines);
  state.egress = hexKeys;
  writeState(state, stateDir);
}

/** Runs many bpftool commands in one process (`bpftool batch file`). */
export async function bpftoolBatch(lines: string[]): Promise<void> {
  if (!lines.length) return;
  const file = join(
    tmpdir(),
    `clovisor-batch-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`,
  );
  writeFileSync(file, lines.join('\n') + '\n');
  try {
    await run('bpftool', ['batch', 'file', file], { system: 'bpftool', timeoutMs: 60_000 });
  } finally {
    rmSync(file, { force: true });
  }
}

interface TcQdisc {
  kind: string;
  handle?: string;
}

async function hasClsact(dev: string, netns?: string): Promise<boolean> {
  const [cmd, args] = inNetns(netns, 'tc', ['-j', 'qdisc', 'show', 'dev', dev]);
  const r = await run(cmd, args, {
    system: 'tc',
    hint: `that interface ${dev} exists${netns ? ` in ${netns}` : ''}`,
  });
  return (JSON.parse(r.stdout || '[]') as TcQdisc[]).some((q) => q.kind === 'clsact');
}

const filterArgs = (dev: string, dir: 'ingress' | 'egress') => [
  'filter',
  'del',
  'dev',
  dev,
  dir,
  'prio',
  String(FILTER_PRIO),
  'handle',
  FILTER_HANDLE,
  'bpf',
];

/** Packet tier on a workload's host veth: ingress = packets from the workload, egress = packets to it. */
export async function attachVeth(
  state: LoaderState,
  target: Target,
  stateDir?: string,
): Promise<VethAttachment> {
  if (!target.hostVeth)
    throw new InfrastructureError('tc', target.workload, 'no host veth known for the packet tier');
  const dev = target.hostVeth;
  const ns = target.hostNetns;
  const already = state.veths.find((v) => v.dev === dev && v.hostNetns === ns);
  if (already) return already;
  let createdQdisc = false;
  if (!(await hasClsact(dev, ns))) {
    const [cmd, args] = inNetns(ns, 'tc', ['qdisc', 'add', 'dev', dev, 'clsact']);
    const r = await tryRun(cmd, args);
    // Somebody else may have added one between our check and our add: then it is theirs.
    if (r.ok) createdQdisc = true;
    else if (!(await hasClsact(dev, ns)))
      throw new InfrastructureError('tc', `qdisc add dev ${dev} clsact`, r.stderr);
  }
  const entry: VethAttachment = {
    dev,
    hostNetns: ns,
    createdQdisc,
    workload: target.workload,
    version: target.version,
  };
  state.veths.push(entry);
  writeState(state, stateDir);
  for (const [dir, prog] of [
    ['ingress', 'tc_from_pod'],
    ['egress', 'tc_to_pod'],
  ] as const) {
    const [cmd, args] = inNetns(ns, 'tc', [
      'filter',
      'replace',
      'dev',
      dev,
      dir,
      'prio',
      String(FILTER_PRIO),
      'handle',
      FILTER_HANDLE,
      'bpf',
      'da',
      'object-pinned',
      join(state.pinRoot, 'prog', prog),
    ]);
    await run(cmd, args, { system: 'tc', hint: `tc filter on ${dev} ${dir}` });
  }
  return entry;
}

/** Removes clovisor's two filters from a veth and, if clovisor created the qdisc and it is now empty, the qdisc. */
export async function detachVeth(v: VethAttachment): Promise<string[]> {
  const done: string[] = [];
  for (const dir of ['ingress', 'egress'] as const) {
    const [cmd, args] = inNetns(v.hostNetns, 'tc', filterArgs(v.dev, dir));
    if ((await tryRun(cmd, args)).ok)
      done.push(`filter ${v.dev} ${dir} prio ${FILTER_PRIO} handle ${FILTER_HANDLE}`);
  }
  if (v.createdQdisc) {
    const others = await Promise.all(
      (['ingress', 'egress'] as const).map(async (dir) => {
        const [cmd, args] = inNetns(v.hostNetns, 'tc', ['-j', 'filter', 'show', 'dev', v.dev, dir]);
        const r = await tryRun(cmd, args);
        return r.ok ? (JSON.parse(r.stdout || '[]') as unknown[]).length : 0;
      }),
    );
    if (others.every((n) => n === 0)) {
      const [cmd, args] = inNetns(v.hostNetns, 'tc', ['qdisc', 'del', 'dev', v.dev, 'clsact']);
      if ((await tryRun(cmd, args)).ok) done.push(`qdisc ${v.dev} clsact`);
    } else done.push(`qdisc ${v.dev} clsact kept: other filters use it`);
  }
  return done;
}

export interface CleanupReport {
  pinRoot: string;
  removed: string[];
  kept: string[];
}

/** Undoes everything a load did: filters, qdiscs it created, pinned links / programs / maps, state file. */
export async function cleanup(opts: { pinRoot?: string; stateDir?: string } = {}): Promise<CleanupReport> {
  const pinRoot = opts.pinRoot ?? DEFAULT_PIN_ROOT;
  const state = readState(pinRoot, opts.stateDir);
  const removed: string[] = [];
  const kept: string[] = [];
  for (const v of state?.veths ?? []) {
    for (const d of await detachVeth(v)) (d.includes('kept') ? kept : removed).push(d);
  }
  if (existsSync(pinRoot)) {
    for (const sub of ['link', 'prog', 'maps']) {
      const dir = join(pinRoot, sub);
      if (existsSync(dir)) for (const f of readdirSync(dir)) removed.push(`${sub}/${f}`);
    }
    rmSync(pinRoot, { recursive: true, force: true });
  }
  rmSync(statePath(pinRoot, opts.stateDir), { force: true });
  return { pinRoot, removed, kept };
}
