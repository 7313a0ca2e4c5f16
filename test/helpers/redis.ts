import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, waitFor } from './ports.js';

/** A real redis-server (Debian package) on a free loopback port, with no persistence. */
export interface RedisFixture {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Kill and start again on the same port (for restart tests). */
  restart(): Promise<void>;
}

/** `password`: requirepass (the URL carries it as `redis://:password@...`). */
export async function startRedis(opts: { password?: string } = {}): Promise<RedisFixture> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'redis-'));
  let proc: ChildProcess;
  const launch = async () => {
    proc = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        ...(opts.password ? ['--requirepass', opts.password] : []),
      ],
      {
        stdio: 'ignore',
      },
    );
    proc.on('error', (e) => {
      throw new Error(
        `redis-server could not start (is the Debian package redis-server installed?): ${e.message}`,
      );
    });
    await waitFor(`redis-server on 127.0.0.1:${port}`, async () => {
      const c = new Redis({
        port,
        host: '127.0.0.1',
        password: opts.password,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      try {
        await c.connect();
        return (await c.ping()) === 'PONG';
      } finally {
        c.disconnect();
      }
    });
  };
  const kill = () =>
    new Promise<void>((resolve) => {
      if (!proc || proc.exitCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  await launch();
  return {
    url: opts.password
      ? `redis://:${encodeURIComponent(opts.password)}@127.0.0.1:${port}`
      : `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await kill();
      await launch();
    },
  };
}
