import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';

/** The kernel's ephemeral range: where bind(0) and outgoing connections take their ports. */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux: the IANA range
  }
  return [49152, 65535];
}

const canBind = (port: number) =>
  new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });

/**
 * A free TCP port on loopback for a server a test starts after this returns. It is picked below the kernel's
 * ephemeral range: a port from bind(0) is free only until the next bind(0) or outgoing connection of any process,
 * which may take it before the test's server binds it (a tracer told to listen on such a port found the port
 * answered by a sandbox workload). Ports below the range are taken only by servers that name them.
 */
export async function freePort(): Promise<number> {
  const [lo] = ephemeralRange();
  const base = Math.max(1024, lo - 12_000);
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = base + Math.floor(Math.random() * (lo - base));
    if (await canBind(port)) return port;
  }
  throw new Error(`no free port found below ${lo} in 50 tries`);
}

/** Poll `check` until it resolves true, or fail after `timeoutMs` with `what` in the message. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
  intervalMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** A process's state and start time (clock ticks since boot) from /proc, or undefined once it is gone. */
function procStat(pid: number): { state: string; start: string } | undefined {
  try {
    // The command name (field 2) is in parentheses and may hold spaces: read the fields after it.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], start: fields[19] };
  } catch {
    return undefined;
  }
}

/**
 * A check that process `pid` has ended: gone, a zombie, or its pid taken by another process (pids are reused,
 * so the start time seen now tells the process apart).
 */
export function ended(pid: number): () => Promise<boolean> {
  const first = procStat(pid);
  return async () => {
    const now = procStat(pid);
    return !first || !now || now.state === 'Z' || now.start !== first.start;
  };
}
