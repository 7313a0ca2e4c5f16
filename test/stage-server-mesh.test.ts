/**
 * The stage server trusting Orca's mesh identity (serve --trust-mesh-principal): only the x-forwarded-client-cert
 * element the local Istio sidecar appends counts (test/conformance/mesh-identity.json), only on connections from
 * the sidecar's address, only for the principals it is told to trust; credentials are still checked before a body
 * byte is read. A real server on loopback; the non-loopback case from this machine's own network address.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { sidecarIdentity, startStageService, type StageService } from '../src/server/index.js';

type Obj = Record<string, any>;
const mesh = JSON.parse(readFileSync(join('test/conformance', 'mesh-identity.json'), 'utf8'));
const ORCA = 'spiffe://cluster.local/ns/spinnaker/sa/spin-orca';
const SELF = 'spiffe://cluster.local/ns/clover-system/sa/clover-cd';
const element = (uri: string) => `By=${SELF};Hash=ab;Subject="";URI=${uri}`;

describe('the identity the sidecar vouches for (mesh-identity.json)', () => {
  it.each(mesh.vectors as Obj[])('$xfcc from $peer → $principal', (v) => {
    const id = sidecarIdentity(
      { 'x-forwarded-client-cert': v.xfcc },
      { remoteAddress: v.peer, rawHeaders: ['x-forwarded-client-cert', v.xfcc] },
    );
    if (v.principal === null) expect(id).not.toHaveProperty('principals');
    else expect(id).toEqual({ principals: [v.principal] });
  });
});

describe('serve --trust-mesh-principal', () => {
  let svc: StageService;
  beforeAll(async () => {
    svc = await startStageService({
      port: 0,
      host: '0.0.0.0',
      registry: {},
      auth: { token: 'tok-93c1', trustMeshPrincipals: [ORCA] },
    });
  });
  afterAll(async () => svc?.stop());

  /** GET /api/v1/jobs?release=x with raw header lines (repeats allowed, as no client library sends them), to `host`. */
  const call = (headers: Array<[string, string]>, host = '127.0.0.1') =>
    new Promise<{ status: number; body: Obj }>((resolve, reject) => {
      const lines = [
        'GET /api/v1/jobs?release=x HTTP/1.1',
        `Host: ${host}`,
        'Connection: close',
        ...headers.map(([k, v]) => `${k}: ${v}`),
      ];
      let text = '';
      const s = connect(svc.port, host, () => s.write(`${lines.join('\r\n')}\r\n\r\n`));
      s.on('data', (d) => (text += d));
      s.on('error', reject);
      s.on('close', () => {
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);
        const body = text.slice(text.indexOf('\r\n\r\n') + 4);
        resolve({
          status,
          body: JSON.parse(
            body.trim().startsWith('{') ? body : body.slice(body.indexOf('{'), body.lastIndexOf('}') + 1),
          ),
        });
      });
    });

  it("admits the principal the sidecar's element names", async () => {
    const r = await call([['x-forwarded-client-cert', element(ORCA)]]);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ release: 'x', jobs: [] });
  });

  it("an element the caller forged in front of the sidecar's proves nothing: 403 naming who the sidecar saw", async () => {
    const r = await call([
      ['x-forwarded-client-cert', `${element(ORCA)},${element('spiffe://cluster.local/ns/dev/sa/default')}`],
    ]);
    expect(r.status).toBe(403);
    expect(r.body.error).toContain('spiffe://cluster.local/ns/dev/sa/default is not one this server trusts');
  });

  it('no credentials at all: 401 saying how to call; two header lines (not what a sidecar sends): 401', async () => {
    const none = await call([]);
    expect(none.status).toBe(401);
    expect(none.body.error).toContain(`a call through the mesh as ${ORCA}`);
    const twice = await call([
      ['x-forwarded-client-cert', element(ORCA)],
      ['x-forwarded-client-cert', element(ORCA)],
    ]);
    expect(twice.status).toBe(401);
    expect(twice.body.error).toContain('appears 2 times');
  });

  it('the bearer token still works alongside; a wrong token is 403 whatever the header says', async () => {
    expect((await call([['authorization', 'Bearer tok-93c1']])).status).toBe(200);
    expect(
      (
        await call([
          ['authorization', 'Bearer nope'],
          ['x-forwarded-client-cert', element(ORCA)],
        ])
      ).status,
    ).toBe(403);
  });

  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  it(`from an address that is not the sidecar's (${external ?? 'none on this machine: the rule is checked by the vectors above'}) the header is ignored: 401`, async () => {
    if (!external)
      return expect(mesh.vectors.some((v: Obj) => v.peer === '10.1.2.3' && v.principal === null)).toBe(true);
    const r = await call([['x-forwarded-client-cert', element(ORCA)]], external);
    expect(r.status).toBe(401);
    expect(r.body.error).toContain('trusted only from the local Istio sidecar');
  });

  it('refuses before reading the body (mesh identity missing)', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(svc.port, '127.0.0.1', () =>
        s.write(
          'POST /api/v1/releases/r/gate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n',
        ),
      );
      s.once('data', (d) => {
        resolve(String(d));
        s.destroy();
      });
      s.on('error', reject);
    });
    expect(text).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('a malformed principal is refused at start (exit 2)', async () => {
    const r = await runCli(['serve', '--trust-mesh-principal', 'spin-orca', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('expected spiffe://<trust domain>/ns/<namespace>/sa/<service account>');
  });
});
