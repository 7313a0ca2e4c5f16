import { Redis } from 'ioredis';
import { createSdcClient, type SdcClient } from '../services/sdc.js';
import {
  addCloverIdsRule,
  applyCloverLb,
  applyCloverServer,
  clusterAddress,
  parseCloverIdsRule,
  parseCloverLb,
  parseCloverServer,
  startCloverIds,
  stopCloverIds,
} from '../services/sdc-clover.js';
import { InvalidInputError } from '../util/errors.js';
import type { CloverSdcBackend } from './clover-routes.js';

/**
 * Clover's /nginx/* and /snort/* controller routes on the SDC control API. On the sandbox every workload is
 * behind one gRPC endpoint (`sdcAddress`); in a cluster each call dials the workload as Clover did
 * (`lb_name` / `server_name` on 50054, snort-ids on 50052). /snort/get_events reads Redis (`redisUrl`).
 */
export interface CloverSdcOptions {
  /** host:port of the SDC control API (the sandbox's); without it, Clover's in-cluster addresses. */
  sdcAddress?: string;
  redisUrl?: string;
}

export function cloverSdcBackend(opts: CloverSdcOptions): CloverSdcBackend {
  const withClient = async <T>(clusterDefault: string, fn: (c: SdcClient) => Promise<T>): Promise<T> => {
    const client = createSdcClient(opts.sdcAddress ?? clusterDefault);
    try {
      return await fn(client);
    } finally {
      client.close();
    }
  };
  // Clover: a missing or malformed field was 400 "Invalid value in json/yaml".
  const parse = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof InvalidInputError)
        throw new InvalidInputError(`Invalid value in json/yaml: ${err.details.join('; ') || err.message}`);
      throw err;
    }
  };
  // Failures the service reports (unknown workload or backend) keep Clover's "Failed to …" message.
  const failed = (message: string) => (err: unknown) => {
    if (err instanceof InvalidInputError) throw new InvalidInputError(`${message}: ${err.message}`);
    throw err;
  };
  const backend: CloverSdcBackend = {
    async nginxLb(body) {
      const change = parse(() => parseCloverLb(body));
      return withClient(clusterAddress('nginx', change.grpcHost), (c) => applyCloverLb(c, change)).then(
        (r) => r.message,
        failed('Failed to modify nginx config'),
      );
    },
    async nginxServer(body) {
      const change = parse(() => parseCloverServer(body));
      return withClient(clusterAddress('nginx', change.grpcHost), (c) => applyCloverServer(c, change)).then(
        (r) => r.message,
        failed('Failed to modify nginx config'),
      );
    },
    async snortAddRule(body) {
      const rule = parse(() => parseCloverIdsRule(body));
      return withClient(clusterAddress('ids'), (c) => addCloverIdsRule(c, rule)).then(
        (r) => r.message,
        failed('Failed to add to local rules'),
      );
    },
    snortStart: () => withClient(clusterAddress('ids'), startCloverIds).then((r) => r.message),
    snortStop: () => withClient(clusterAddress('ids'), stopCloverIds).then((r) => r.message),
  };
  if (opts.redisUrl) {
    const url = opts.redisUrl;
    backend.snortGetEvents = async (body) => {
      const b = (body ?? {}) as { event_key?: unknown; field?: unknown };
      if (typeof b.event_key !== 'string' || typeof b.field !== 'string')
        throw new InvalidInputError(
          'Invalid value in json/yaml: expected {"event_key": "snort_event:<id>", "field": "<unified2 field>"}',
        );
      const redis = new Redis(url, {
        lazyConnect: true,
        connectTimeout: 3000,
        maxRetriesPerRequest: 1,
        retryStrategy: () => null,
      });
      redis.on('error', () => undefined);
      try {
        await redis.connect();
        return (await redis.hget(b.event_key, b.field)) ?? '';
      } finally {
        redis.disconnect();
      }
    };
  }
  return backend;
}
