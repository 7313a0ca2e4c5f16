/**
 * The packet tier's request heads: a reader of the `http_events` perf array (one record per flow, at its first
 * request segment, up to 512 payload bytes) whose parsed headers wait here, by flow, until the flow is drained.
 * A perf array of its own: a burst of request heads can never crowd out the session events evidence is made of.
 */
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { InfrastructureError } from '../util/errors.js';
import { EventPipeParser, decodeHttpHead, type HttpHeaders } from './records.js';
import { spawnReader } from './system.js';

/** Heads waiting for their flow (each flow has at most one); the oldest goes first beyond this. */
const MAX_HEADS = 65_536;

export class HeadReader {
  private parser = new EventPipeParser();
  private heads = new Map<string, HttpHeaders>();
  /** Records read (the drain waits until it has read as many as the kernel sent). */
  received = 0;
  lost = 0;

  private constructor(private readonly child: ChildProcessByStdio<null, Readable, Readable>) {}

  /** Starts the reader and resolves once its rings are open (clovisor-events says so; bpftool opens them first). */
  static async start(perfArray: string, reader?: string): Promise<HeadReader> {
    const { child, kind } = spawnReader(perfArray, reader);
    const r = new HeadReader(child);
    let ready = kind !== 'clovisor-events';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (!ready && chunk.includes('"ready":true')) ready = true;
      r.parser.push(
        chunk,
        (d) => r.add(d),
        (n) => (r.lost += n),
      );
    });
    const deadline = Date.now() + 10_000;
    while (!ready) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new InfrastructureError(
          'clovisor-events',
          perfArray,
          stderr.trim() || 'the request-head reader did not start within 10 s',
        );
      }
      await new Promise((res) => setTimeout(res, 10));
    }
    return r;
  }

  private add(d: Buffer): void {
    this.received++;
    const h = decodeHttpHead(d);
    if (!h) return;
    this.heads.set(h.id, h.headers);
    if (this.heads.size > MAX_HEADS) this.heads.delete(this.heads.keys().next().value as string);
  }

  /** The headers of a flow (read at every drain while the flow is open). */
  get(id: string): HttpHeaders | undefined {
    return this.heads.get(id);
  }

  /** Forgets a flow's headers once the flow is emitted. */
  delete(id: string): void {
    this.heads.delete(id);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGINT');
    await exited;
  }
}
