import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import { freePort, waitFor } from './ports.js';

/** A real Prometheus (Debian package) on a free loopback port, scraping the given targets every second. */
export interface PrometheusFixture {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Wait until every target has been scraped successfully at least once after `afterMs`. */
  waitForScrape(afterMs?: number, timeoutMs?: number): Promise<void>;
}

/** `targets` are full URLs such as http://127.0.0.1:1234/metrics. */
export async function startPrometheus(targets: string[]): Promise<PrometheusFixture> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
  const jobs = targets.map((t, i) => {
    const u = new URL(t);
    return `  - job_name: target${i}\n    metrics_path: ${JSON.stringify(u.pathname || '/metrics')}\n    static_configs:\n      - targets: [${JSON.stringify(u.host)}]`;
  });
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n${jobs.join('\n')}\n`,
  );
  const proc: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: 'ignore' },
  );
  let spawnError: Error | undefined;
  proc.on('error', (e) => (spawnError = e));
  const url = `http://127.0.0.1:${port}`;
  const stop = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (proc.exitCode !== null || proc.signalCode !== null) return done();
      proc.once('exit', done);
      proc.kill('SIGTERM');
      setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
    });
  try {
    await waitFor(
      `prometheus on ${url}`,
      async () => {
        if (spawnError)
          throw new Error(
            `prometheus could not start (is the Debian package prometheus installed?): ${spawnError.message}`,
          );
        return (
          (await axios.get(`${url}/-/ready`, { validateStatus: () => true, proxy: false })).status === 200
        );
      },
      30_000,
      100,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const fixture: PrometheusFixture = {
    url,
    port,
    stop,
    async waitForScrape(afterMs = Date.now(), timeoutMs = 15_000) {
      await waitFor(
        `prometheus to scrape ${targets.join(', ')} after ${new Date(afterMs).toISOString()}`,
        async () => {
          const r = await axios.get(`${url}/api/v1/targets`, { proxy: false });
          const active = r.data.data.activeTargets as Array<{ health: string; lastScrape: string }>;
          return (
            active.length === targets.length &&
            active.every((t) => t.health === 'up' && Date.parse(t.lastScrape) > afterMs)
          );
        },
        timeoutMs,
        100,
      );
    },
  };
  return fixture;
}
