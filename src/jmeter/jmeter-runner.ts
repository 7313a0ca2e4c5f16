import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExitCode, InfrastructureError } from '../util/errors.js';
import { JTL_COLUMNS, USER_AGENT_COLUMN } from './jtl.js';
import type { LoadProgress } from './types.js';

/**
 * Runs Apache JMeter in non-GUI mode. JMeter's exit code is 0 even when it ran nothing (2.13), so success is
 * read from its output and results: an "end of run" line, no driver error, and a JTL with rows.
 */

const LAUNCHER_CLASS = 'JMeterXStreamFix';
const LAUNCHER_SOURCE = fileURLToPath(new URL(`./launcher/${LAUNCHER_CLASS}.java`, import.meta.url));
const INSTALL_HINT =
  'install JMeter (Debian: apt-get install -y jmeter; or unpack Apache JMeter 5.x and pass --jmeter-home), or use --engine builtin';

export interface JMeterInstall {
  home: string;
  /** `launcher`: Debian's 2.13 with system XStream, started through the allow-list launcher. */
  mode: 'launcher' | 'script';
  command: string;
  baseArgs: string[];
}

export function launcherDir(): string {
  return (
    process.env.CLOVER_CD_JMETER_LAUNCHER_DIR ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'clover-cd', 'jmeter-launcher')
  );
}

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/** Debian's package ships no XStream jar of its own: it uses the system's, whose allow-list blocks JMeter. */
function usesSystemXStream(home: string): boolean {
  const lib = join(home, 'lib');
  return existsSync(lib) && !readdirSync(lib).some((f) => /^xstream.*\.jar$/.test(f));
}

function ensureLauncher(home: string): string {
  const dir = launcherDir();
  const cls = join(dir, `${LAUNCHER_CLASS}.class`);
  if (existsSync(cls) && statSync(cls).mtimeMs >= statSync(LAUNCHER_SOURCE).mtimeMs) return dir;
  try {
    execFileSync(
      'javac',
      ['-nowarn', '-cp', join(home, 'bin', 'ApacheJMeter.jar'), '-d', dir, LAUNCHER_SOURCE],
      { stdio: 'pipe', timeout: 60_000 },
    );
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new InfrastructureError(
      'JMeter',
      home,
      `cannot compile the JMeter launcher: ${e.stderr?.toString().trim() || e.message}`,
      'install a JDK (javac) or run scripts/setup.d/jmeter.sh',
    );
  }
  return dir;
}

/**
 * The JVM options JMeter's own `bin/jmeter` script takes from the environment: `HEAP`, then `JVM_ARGS` (split
 * on white space, as the script's unquoted expansion does; later options win). The launcher starts java
 * itself, so without this a user's heap size would be silently dropped there and kept in script mode.
 */
function jvmOptions(env: NodeJS.ProcessEnv): string[] {
  return [env.HEAP, env.JVM_ARGS].flatMap((v) => (v ?? '').split(/\s+/).filter(Boolean));
}

/** Locate JMeter: --jmeter-home, $JMETER_HOME, `jmeter` on PATH, /usr/share/jmeter. */
export function findJMeter(jmeterHome?: string): JMeterInstall | undefined {
  const candidates: string[] = [];
  if (jmeterHome) candidates.push(jmeterHome);
  else {
    if (process.env.JMETER_HOME) candidates.push(process.env.JMETER_HOME);
    const bin = onPath('jmeter');
    if (bin) candidates.push(dirname(dirname(realpathSync(bin))));
    candidates.push('/usr/share/jmeter');
  }
  const home = candidates.find((h) => existsSync(join(h, 'bin', 'ApacheJMeter.jar')));
  if (!home) {
    if (jmeterHome)
      throw new InfrastructureError(
        'JMeter',
        jmeterHome,
        'no bin/ApacheJMeter.jar under --jmeter-home',
        INSTALL_HINT,
      );
    return undefined;
  }
  if (usesSystemXStream(home)) {
    return {
      home,
      mode: 'launcher',
      command: 'java',
      baseArgs: [
        ...jvmOptions(process.env),
        `-Djmeter.home=${home}`,
        '-cp',
        `${join(home, 'bin', 'ApacheJMeter.jar')}:${ensureLauncher(home)}`,
        LAUNCHER_CLASS,
      ],
    };
  }
  return { home, mode: 'script', command: join(home, 'bin', 'jmeter'), baseArgs: [] };
}

export function requireJMeter(jmeterHome?: string): JMeterInstall {
  const found = findJMeter(jmeterHome);
  if (!found)
    throw new InfrastructureError(
      'JMeter',
      'jmeter on PATH, $JMETER_HOME, /usr/share/jmeter',
      'JMeter is not installed',
      INSTALL_HINT,
    );
  return found;
}

/** Properties every run needs: a header line and the columns the parser and the gate read. */
export const SAVE_PROPERTIES: Record<string, string> = {
  'jmeter.save.saveservice.output_format': 'csv',
  'jmeter.save.saveservice.print_field_names': 'true',
  'jmeter.save.saveservice.url': 'true',
  'jmeter.save.saveservice.assertion_results_failure_message': 'true',
  'jmeter.save.saveservice.connect_time': 'true',
  'jmeter.save.saveservice.idle_time': 'true',
  'jmeter.save.saveservice.timestamp_format': 'ms',
  sample_variables: USER_AGENT_COLUMN,
  'summariser.interval': '5',
};

const SUMMARY =
  /(\w+) ([+=])\s+(\d+) in\s+(?:(\d+(?:\.\d+)?)s|(\d\d):(\d\d):(\d\d)) =\s+([\d.]+)\/s Avg:\s+(\d+) Min:\s+(\d+) Max:\s+(\d+) Err:\s+(\d+) \(([\d.]+)%\)/;
/** JMeter's line once its non-GUI shutdown port listens (2.13: "shutdown message", 3.x+: "Shutdown/StopTestNow/… message"). */
const LISTENING = /Waiting for possible .*message on port/i;
const DRIVER_ERROR =
  /Error in NonGUIDriver|Could not open|Unknown option|^Error:|Exception in thread|Failed to (?:configure|initialise) remote engine|Engine is busy|java\.rmi\.\w+Exception/m;

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.on('error', reject);
    s.bind(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export interface JMeterRunOptions {
  jmx: string;
  jtl: string;
  log: string;
  remote?: string[];
  jmeterHome?: string;
  signal?: AbortSignal;
  onProgress?: (p: LoadProgress) => void;
  onSpawn?: (pid: number) => void;
}

/** JMeter's own final count: the last cumulative "summary = N in ..." line of its summariser, if any. */
export function reportedSamples(stdout: string): number | undefined {
  let last: number | undefined;
  for (const line of stdout.split('\n')) {
    const m = SUMMARY.exec(line);
    if (m && m[1] === 'summary' && m[2] === '=') last = Number(m[3]);
  }
  return last;
}

/**
 * Run one plan; resolves when the JMeter process (the controller, in distributed mode, which exits only after
 * every engine has finished and its samples are written) has closed, and its results look complete; else
 * throws exit 4. `reported` is JMeter's own sample count, for the caller to compare with the JTL.
 */
export async function runJMeter(
  o: JMeterRunOptions,
): Promise<{ interrupted: boolean; stdout: string; reported?: number }> {
  const jm = requireJMeter(o.jmeterHome);
  const shutdownPort = await freeUdpPort();
  const props = {
    ...SAVE_PROPERTIES,
    'jmeterengine.nongui.port': String(shutdownPort),
    'jmeterengine.nongui.maxport': String(shutdownPort),
  };
  const args = [...jm.baseArgs, '-n', '-t', o.jmx, '-l', o.jtl, '-j', o.log];
  for (const [k, v] of Object.entries(props)) args.push(`-J${k}=${v}`);
  if (o.remote?.length) {
    args.push(
      '-R',
      o.remote.join(','),
      '-Gsample_variables=' + USER_AGENT_COLUMN,
      '-Jserver.rmi.ssl.disable=true',
    );
    if (o.remote.every((r) => /^(127\.|localhost)/.test(r)))
      args.push('-Djava.rmi.server.hostname=127.0.0.1');
  }
  const started = Date.now();
  const child = spawn(jm.command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  if (child.pid) o.onSpawn?.(child.pid);
  let stdout = '';
  let interrupted = false;
  // JMeter reads the "Shutdown" datagram only once it says it listens; a JVM still starting is stopped instead.
  let listening = false;
  const onLine = (line: string) => {
    if (LISTENING.test(line)) listening = true;
    const m = SUMMARY.exec(line);
    if (m && m[2] === '=')
      o.onProgress?.({ sent: Number(m[3]), errors: Number(m[12]), elapsedS: (Date.now() - started) / 1000 });
  };
  let partial = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    lines.forEach(onLine);
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const timers: NodeJS.Timeout[] = [];
  const onAbort = () => {
    interrupted = true;
    if (!listening) {
      // Not running the plan yet (its JVM starts): nothing was sent, and a datagram now would be lost.
      child.kill('SIGTERM');
      timers.push(setTimeout(() => child.kill('SIGKILL'), 5_000).unref());
      return;
    }
    // JMeter's own graceful stop: a "Shutdown" datagram on its non-GUI port ends threads after their sample.
    const s = createSocket('udp4');
    s.send('Shutdown', shutdownPort, '127.0.0.1', () => s.close());
    timers.push(setTimeout(() => child.kill('SIGTERM'), 15_000).unref());
    timers.push(setTimeout(() => child.kill('SIGKILL'), 25_000).unref());
  };
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) =>
      reject(new InfrastructureError('JMeter', jm.command, `cannot start: ${err.message}`, INSTALL_HINT)),
    );
    child.on('close', (c) => resolve(c));
  });
  timers.forEach(clearTimeout);
  o.signal?.removeEventListener('abort', onAbort);
  // Stopped before it wrote a results file: an empty run, with the header the parser reads.
  if (interrupted && !existsSync(o.jtl)) writeFileSync(o.jtl, `${JTL_COLUMNS.join(',')}\n`);
  checkOutcome(stdout, o, code, interrupted);
  return { interrupted, stdout, reported: reportedSamples(stdout) };
}

/** -1 when the JTL is missing, else whether it has at least one sample row (reads its first 64 KB only). */
function jtlRows(file: string): number {
  if (!existsSync(file)) return -1;
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(65536);
    const text = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
    return text.split('\n').some((l) => l && !l.startsWith('timeStamp,')) ? 1 : 0;
  } finally {
    closeSync(fd);
  }
}

/** Relevant lines of JMeter's stdout and log for an error message. */
function relevantLines(stdout: string, logFile: string): string[] {
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  const pick = (t: string) =>
    t.split('\n').filter((l) => DRIVER_ERROR.test(l) || /\b(ERROR|FATAL)\b/.test(l));
  const lines = [...pick(stdout), ...pick(log)].map((l) => l.trim()).filter(Boolean);
  return [...new Set(lines)].slice(0, 8);
}

function checkOutcome(stdout: string, o: JMeterRunOptions, code: number | null, interrupted: boolean): void {
  const rows = jtlRows(o.jtl);
  // In distributed mode 2.13 sometimes exits before printing "end of run" (its end-of-test callbacks race);
  // every engine having reported "Finished remote host" is the same fact, read from stdout or the log.
  const log = o.remote?.length && existsSync(o.log) ? readFileSync(o.log, 'utf8') : '';
  const ended =
    /end of run/.test(stdout) ||
    Boolean(
      o.remote?.length &&
      o.remote.every(
        (h) => stdout.includes(`Finished remote host: ${h}`) || log.includes(`Finished remote host: ${h}`),
      ),
    );
  const problem = DRIVER_ERROR.test(stdout)
    ? 'JMeter reported an error'
    : !ended && !interrupted
      ? `JMeter stopped without "end of run" (exit code ${code})`
      : rows < 0
        ? `JMeter wrote no results file ${o.jtl}`
        : rows === 0 && !interrupted
          ? `JMeter ran but recorded no samples in ${o.jtl}`
          : undefined;
  if (!problem) return;
  const lines = relevantLines(stdout, o.log);
  const detail = lines.length ? `\n    ${lines.join('\n    ')}` : '';
  throw new InfrastructureError(
    'JMeter',
    o.jmx,
    `${problem}${detail}`,
    `read ${o.log}; ${o.remote?.length ? `check that jmeter-server runs on ${o.remote.join(', ')}` : 'check the plan renders with clover-cd load render'}`,
  );
}

/** Start a `jmeter-server` engine (distributed mode) on loopback-friendly RMI settings. */
export function jmeterServerArgs(port: number, localPort: number, hostname = '127.0.0.1'): string[] {
  return [
    `-Dserver_port=${port}`,
    `-Jserver.rmi.localport=${localPort}`,
    `-Djava.rmi.server.hostname=${hostname}`,
    '-Jserver.rmi.ssl.disable=true',
    '-s',
  ];
}

export interface EngineOptions {
  port: number;
  localPort: number;
  /** The name controllers reach this engine by (in its RMI stubs). */
  hostname: string;
  jmeterHome?: string;
  signal?: AbortSignal;
}

/**
 * A jmeter-server engine in the foreground (`clover-cd load server`), started as a local run starts JMeter
 * (Debian's 2.13 through the launcher); its output goes to ours. Resolves with JMeter's exit code, or 130
 * when the signal stopped it (SIGTERM first, SIGKILL 10 s later).
 */
export async function serveEngine(o: EngineOptions): Promise<number> {
  const jm = requireJMeter(o.jmeterHome);
  const child = spawn(jm.command, [...jm.baseArgs, ...jmeterServerArgs(o.port, o.localPort, o.hostname)], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let stopped = false;
  let killer: NodeJS.Timeout | undefined;
  const onAbort = () => {
    stopped = true;
    child.kill('SIGTERM');
    killer = setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  };
  if (o.signal?.aborted) onAbort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) =>
      reject(
        new InfrastructureError(
          'JMeter',
          jm.command,
          `cannot start jmeter-server: ${err.message}`,
          INSTALL_HINT,
        ),
      ),
    );
    child.on('close', (c) => resolve(c));
  });
  clearTimeout(killer);
  o.signal?.removeEventListener('abort', onAbort);
  return stopped ? ExitCode.interrupted : (code ?? ExitCode.infrastructure);
}
