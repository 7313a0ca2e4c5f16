/**
 * The dashboard under /ui: the releases this server runs jobs for, a page per release with its timeline of
 * steps, and each gate job's report and evidence — found by job id in the job store and served only when the
 * recorded file lies inside the server's evidence directory; a request never names a path.
 *   GET  /ui                         releases (phase, step, weights, last verdict, active job)
 *   GET  /ui/releases/{release}      timeline of steps, verdicts, jobs, links to reports
 *   GET  /ui/api/releases[/{name}]   the same as JSON (the pages poll it every 2 s)
 *   GET  /ui/jobs/{id}/report        the gate report (HTML, rendered from the job's evidence bundle)
 *   GET  /ui/jobs/{id}/evidence      the evidence bundle (JSON)
 *   GET|POST /ui/login, POST /ui/logout   session cookie from the API token or the read-only token
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sep } from 'node:path';
import { gateHtml } from '../reports/index.js';
import type { Platform } from '../services/platform.js';
import type { EvidenceBundle } from '../validators/index.js';
import { HttpError } from './http-util.js';
import type { JobManager } from './jobs.js';
import { DashboardData, ReleaseIndex } from './ui-data.js';
import { clearedCookie, roleOfToken, sessionCookie, uiRole, type UiAuthConfig } from './ui-auth.js';
import { dashboardPage, loginPage, releasePage } from './ui-pages.js';

export interface UiOptions {
  /** Where the engine reads the release state (the platform the stages act on). */
  platform?: Platform;
  /** The server's evidence directory: reports and bundles are served only from inside it. */
  evidenceDir?: string;
  /** A token that opens the dashboard only (`serve --read-token-env`). */
  readToken?: string;
  /** Set Secure on the session cookie (the public URL is https). */
  secureCookie?: boolean;
  index?: ReleaseIndex;
}

export interface Ui {
  readonly index: ReleaseIndex;
  /** Adds the /ui routes to the stage server; they check their own credentials, not the API's. */
  register(app: FastifyInstance, config: object): void;
}

const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

const csp = (nonce: string) =>
  `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

function html(reply: FastifyReply, status: number, body: string, nonce: string) {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .headers({
      'content-security-policy': csp(nonce),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    })
    .send(body);
}

const see = (reply: FastifyReply, location: string) => reply.code(303).header('location', location).send();

export function createUi(jobs: JobManager, auth: UiAuthConfig, opts: UiOptions = {}): Ui {
  const index = opts.index ?? new ReleaseIndex();
  const data = new DashboardData(jobs, index, opts.platform);

  /** The evidence file a gate job recorded, when it lies inside the evidence directory. */
  async function evidenceOf(id: string): Promise<{ file: string; text: string } | undefined> {
    const job = await jobs.get(id);
    const recorded = job?.reports?.evidence;
    if (!job || typeof recorded !== 'string' || !opts.evidenceDir) return undefined;
    try {
      const root = await fs.realpath(opts.evidenceDir);
      const file = await fs.realpath(recorded);
      if (!file.startsWith(root + sep) || !file.endsWith('.json')) return undefined;
      const st = await fs.stat(file);
      if (!st.isFile() || st.size > MAX_BUNDLE_BYTES) return undefined;
      return { file, text: await fs.readFile(file, 'utf8') };
    } catch {
      return undefined;
    }
  }

  function register(app: FastifyInstance, config: object): void {
    const param = (request: FastifyRequest, name: string) => (request.params as Record<string, string>)[name];
    const page = (reply: FastifyReply, status: number, view: (nonce: string) => string) => {
      const nonce = randomBytes(16).toString('base64');
      return html(reply, status, view(nonce), nonce);
    };
    app.get('/ui/login', { config }, (_request, reply) => page(reply, 200, () => loginPage()));
    app.post('/ui/login', { config, bodyLimit: 4096 }, (request, reply) => {
      const token = new URLSearchParams(String(request.body ?? '')).get('token') ?? '';
      const role = token ? roleOfToken(auth, token) : undefined;
      if (!role) return page(reply, 403, () => loginPage('That token is not valid for this server.'));
      return see(reply.header('set-cookie', sessionCookie(auth, role, !!opts.secureCookie)), '/ui');
    });
    app.all('/ui/logout', { config }, (_request, reply) =>
      see(reply.header('set-cookie', clearedCookie), '/ui/login'),
    );
    // Everything else needs a role: the API token, the read-only token or a session cookie.
    app.register(async (ui) => {
      ui.addHook('onRequest', async (request, reply) => {
        if (uiRole(auth, request.headers)) return;
        if (request.url.startsWith('/ui/api/'))
          return reply
            .code(401)
            .send({ error: 'log in at /ui/login, or send "Authorization: Bearer <token>"' });
        return see(reply, '/ui/login');
      });
      for (const url of ['/ui', '/ui/'])
        ui.get(url, { config }, (_r, reply) => page(reply, 200, dashboardPage));
      ui.get('/ui/releases/:release', { config }, (request, reply) =>
        page(reply, 200, (nonce) => releasePage(nonce, param(request, 'release'))),
      );
      ui.get('/ui/api/releases', { config }, async () => ({ releases: await data.releases() }));
      ui.get('/ui/api/releases/:release', { config }, async (request, reply) => {
        const view = await data.release(param(request, 'release'));
        return view ?? reply.code(404).send({ error: 'no job of this release on this server' });
      });
      ui.get('/ui/jobs/:id/:kind', { config }, async (request, reply) => {
        const kind = param(request, 'kind');
        const ev =
          kind === 'report' || kind === 'evidence' ? await evidenceOf(param(request, 'id')) : undefined;
        if (!ev)
          return reply
            .code(404)
            .send({ error: "no evidence for this job in the server's evidence directory" });
        if (kind === 'evidence')
          return reply
            .type('application/json')
            .headers({
              'content-disposition': 'attachment; filename="evidence.json"',
              'x-content-type-options': 'nosniff',
            })
            .send(ev.text);
        let bundle: EvidenceBundle;
        try {
          bundle = JSON.parse(ev.text) as EvidenceBundle;
        } catch {
          return reply.code(404).send({ error: 'the evidence bundle of this job is not readable' });
        }
        return page(reply, 200, (nonce) => gateHtml(bundle, undefined, ev.file, { nonce }));
      });
      ui.all('/ui/*', { config }, async (request) => {
        if (request.method !== 'GET' && request.method !== 'HEAD')
          throw new HttpError(405, 'the dashboard is read-only: use GET', {}, { allow: 'GET' });
        throw new HttpError(404, `no route ${request.method} ${request.url.split('?')[0]}`);
      });
    });
  }

  return { index, register };
}
