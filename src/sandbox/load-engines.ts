/**
 * The sandbox's distributed load engines: local `clover-cd load server` processes (jmeter-server, started as
 * `load run` starts JMeter, the command the cluster's engine pods run) on free loopback ports. Each engine is
 * recorded in the state folder while it exists (`<records>/<id>.json`: its process group, ports, release,
 * step and the process that owns it), so a run killed before it could stop its engines leaves a record, and
 * the next start removes what such a run left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import writeFileAtomic from 'write-file-atomic';
import type { LoadEngineRequest, LoadEngineSet } from '../services/platform.js';
import { InfrastructureError, InterruptedError } from '../util/errors.js';

/** The CLI of this installation (dist/sandbox → bin, src/sandbox → bin). */
const CLI = fileURLToPath(new URL('../../bin/clover-cd.js', import.meta.url));
/** A JVM start on two busy cores takes seconds; a minute means it will not come. */
export const ENGINE_READY_TIMEOUT_MS = 90_000;
/** jmeter-server prints this once its engine is bound in the RMI registry (the registry port opens earlier). */
const READY_LINE = /Created remote object/;

export interface EngineRecord {
  id: string;
  /** The engine's process (`clover-cd load server`), leader of a process group that holds its JVM. */
  pid: number;
  port: number;
  localPort: number;
  release: string;
  step: number;
  /** The process that started the engine and stops it at the window's end. */
  owner: number;
  startedAt: string;
}

export const engineRecordsDir = (stateDir: string) => join(stateDir, 'load-engines');

function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const readProc = (pid: string, file: string): string => {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return '';
  }
};

/** Processes of group `pgid` that are this record's engine (its CLI or its JVM, by port): a reused pid is left alone. */
function engineProcesses(r: EngineRecord): number[] {
  if (!existsSync('/proc')) return [];
  const ours = (cmd: string) =>
    cmd.includes(`-Dserver_port=${r.port}\0`) ||
    (cmd.includes('\0load\0server\0') && cmd.includes(`\0--port\0${r.port}\0`));
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may hold spaces, so read after its ")".
      const stat = readProc(d, 'stat');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return Number(fields[2]) === r.pid && ours(readProc(d, 'cmdline'));
    })
    .map(Number);
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/**
 * Stop engines that runs which are no longer alive left behind, and drop their records. Returns what it
 * removed, for the run to say so.
 */
export function removeLeftEngines(stateDir: string): EngineRecord[] {
  const dir = engineRecordsDir(stateDir);
  if (!existsSync(dir)) return [];
  const removed: EngineRecord[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    let r: EngineRecord;
    try {
      r = JSON.parse(readFileSync(join(dir, f), 'utf8')) as EngineRecord;
    } catch {
      rmSync(join(dir, f), { force: true }); // not a record this version writes (records are written whole)
      continue;
    }
    if (r.owner !== process.pid && alive(r.owner)) continue;
    if (engineProcesses(r).length) killGroup(r.pid);
    rmSync(join(dir, f), { force: true });
    rmSync(join(dir, r.id), { recursive: true, force: true });
    removed.push(r);
  }
  return removed;
}

interface Engine {
  record: EngineRecord;
  child: ChildProcess;
  exited: Promise<void>;
}

function startEngine(
  dir: string,
  id: string,
  port: number,
  localPort: number,
  req: LoadEngineRequest,
): Engine {
  // jmeter-server writes jmeter-server.log into its working folder: one folder per engine.
  const cwd = join(dir, id);
  mkdirSync(cwd, { recursive: true });
  const child = spawn(
    process.execPath,
    [
      CLI,
      'load',
      'server',
      '--port',
      String(port),
      '--local-port',
      String(localPort),
      '--hostname',
      '127.0.0.1',
    ],
    // Its own process group: one signal reaches the CLI and its JVM, even when the CLI is gone.
    { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const record: EngineRecord = {
    id,
    pid: child.pid ?? 0,
    port,
    localPort,
    release: req.release,
    step: req.step,
    owner: process.pid,
    startedAt: new Date().toISOString(),
  };
  // Whole or not at all: another run's removeLeftEngines may read it now.
  if (child.pid) writeFileAtomic.sync(join(dir, `${id}.json`), JSON.stringify(record));
  const exited = new Promise<void>((resolve) => {
    if (!child.pid) return resolve();
    child.once('exit', () => resolve());
  });
  return { record, child, exited };
}

function whenReady(e: Engine, dir: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const host = `127.0.0.1:${e.record.port}`;
    const done = (err?: Error) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      e.child.removeListener('exit', onExit);
      e.child.removeListener('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onData = (d: Buffer) => {
      if (out.length < 64_000) out += d.toString();
      if (READY_LINE.test(out)) done();
    };
    const tail = () => out.trim().split('\n').slice(-5).join('\n    ');
    const onExit = (code: number | null) =>
      done(
        new InfrastructureError(
          'JMeter',
          `jmeter-server ${host}`,
          `the engine exited (code ${code}) before it was ready${out ? `:\n    ${tail()}` : ''}`,
          `clover-cd load server --port ${e.record.port} runs alone; JMeter is installed (scripts/setup.d/jmeter.sh)`,
        ),
      );
    const onError = (err: Error) =>
      done(new InfrastructureError('JMeter', `jmeter-server ${host}`, `cannot start: ${err.message}`));
    const onAbort = () =>
      done(new InterruptedError('interrupted while the load engines started: no load was sent'));
    const timer = setTimeout(
      () =>
        done(
          new InfrastructureError(
            'JMeter',
            `jmeter-server ${host}`,
            `not ready after ${ENGINE_READY_TIMEOUT_MS / 1000}s${out ? `:\n    ${tail()}` : ''}`,
            `${join(dir, e.record.id, 'jmeter-server.log')}, and the machine's load`,
          ),
        ),
      ENGINE_READY_TIMEOUT_MS,
    );
    e.child.stdout!.on('data', onData);
    e.child.stderr!.on('data', onData);
    e.child.once('exit', onExit);
    e.child.once('error', onError);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Start `count` local engines and resolve once every one is bound; an abort (or a failed engine) stops every
 * engine started so far at once, the ones whose JVM is still starting too, and removes their records.
 */
export async function startLocalEngines(stateDir: string, req: LoadEngineRequest): Promise<LoadEngineSet> {
  const dir = engineRecordsDir(stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  removeLeftEngines(stateDir);
  const signal = req.signal ?? new AbortController().signal;
  const engines: Engine[] = [];
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      signal.removeEventListener('abort', onAbort);
      for (const e of engines) killGroup(e.record.pid);
      await Promise.all(engines.map((e) => e.exited));
      for (const e of engines) {
        rmSync(join(dir, `${e.record.id}.json`), { force: true });
        rmSync(join(dir, e.record.id), { recursive: true, force: true });
      }
    })());
  // Stopped as soon as the abort comes, whatever the start is waiting for.
  const onAbort = () => void stop();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal.aborted)
      throw new InterruptedError('interrupted before the load engines started: no load was sent');
    const stamp = `${req.release}-s${req.step + 1}-${process.pid}-${Date.now().toString(36)}`;
    for (let i = 0; i < req.count; i++) {
      const [port, localPort] = [await freeTcpPort(), await freeTcpPort()];
      if (signal.aborted)
        throw new InterruptedError('interrupted while the load engines started: no load was sent');
      engines.push(startEngine(dir, `${stamp}-${i}`, port, localPort, req));
    }
    await Promise.all(engines.map((e) => whenReady(e, dir, signal)));
    return { hosts: engines.map((e) => `127.0.0.1:${e.record.port}`), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
