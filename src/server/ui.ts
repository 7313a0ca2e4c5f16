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
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sep } from 'node:path';
import { gateHtml } from '../reports/index.js';
import type { Platform } from '../services/platform.js';
import type { EvidenceBundle } from '../validators/index.js';
import { decodeSegment, HttpError, readBody, send } from './http-util.js';
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
  /** Answers a /ui request; the stage server calls it before its own auth (the dashboard has its own). */
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void>;
}

const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

const csp = (nonce: string) =>
  `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

function html(
  res: ServerResponse,
  status: number,
  body: string,
  nonce: string,
  headers: Record<string, string> = {},
): void {
  send(res, status, body, {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': csp(nonce),
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    ...headers,
  });
}

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

  async function login(req: IncomingMessage, res: ServerResponse, nonce: string): Promise<void> {
    if (req.method === 'GET') return html(res, 200, loginPage(), nonce);
    if (req.method !== 'POST') throw new HttpError(405, 'use GET or POST', {}, { allow: 'GET, POST' });
    const raw = await readBody(req, 4096, 10_000);
    const token = new URLSearchParams(raw.toString('utf8')).get('token') ?? '';
    const role = token ? roleOfToken(auth, token) : undefined;
    if (!role) return html(res, 403, loginPage('That token is not valid for this server.'), nonce);
    res.writeHead(303, {
      location: '/ui',
      'set-cookie': sessionCookie(auth, role, !!opts.secureCookie),
      'cache-control': 'no-store',
      'content-length': 0,
    });
    res.end();
  }

  return {
    index,
    async handle(req, res, path) {
      const nonce = randomBytes(16).toString('base64');
      if (path === '/ui/login') return login(req, res, nonce);
      if (path === '/ui/logout') {
        res.writeHead(303, { location: '/ui/login', 'set-cookie': clearedCookie, 'content-length': 0 });
        return void res.end();
      }
      const role = uiRole(auth, req.headers);
      if (!role) {
        if (path.startsWith('/ui/api/'))
          return send(res, 401, { error: 'log in at /ui/login, or send "Authorization: Bearer <token>"' });
        res.writeHead(303, { location: '/ui/login', 'content-length': 0, 'cache-control': 'no-store' });
        return void res.end();
      }
      if (req.method !== 'GET' && req.method !== 'HEAD')
        throw new HttpError(405, 'the dashboard is read-only: use GET', {}, { allow: 'GET' });
      let m: RegExpExecArray | null;
      if (path === '/ui' || path === '/ui/') return html(res, 200, dashboardPage(nonce), nonce);
      if (path === '/ui/api/releases') return send(res, 200, { releases: await data.releases() });
      if ((m = /^\/ui\/api\/releases\/([^/]+)$/.exec(path))) {
        const view = await data.release(decodeSegment(m[1], 'release'));
        return view
          ? send(res, 200, view)
          : send(res, 404, { error: 'no job of this release on this server' });
      }
      if ((m = /^\/ui\/releases\/([^/]+)$/.exec(path)))
        return html(res, 200, releasePage(nonce, decodeSegment(m[1], 'release')), nonce);
      if ((m = /^\/ui\/jobs\/([^/]+)\/(report|evidence)$/.exec(path))) {
        const ev = await evidenceOf(decodeSegment(m[1], 'id'));
        if (!ev)
          return send(res, 404, { error: "no evidence for this job in the server's evidence directory" });
        if (m[2] === 'evidence')
          return send(res, 200, ev.text, {
            'content-type': 'application/json',
            'content-disposition': 'attachment; filename="evidence.json"',
            'x-content-type-options': 'nosniff',
          });
        let bundle: EvidenceBundle;
        try {
          bundle = JSON.parse(ev.text) as EvidenceBundle;
        } catch {
          return send(res, 404, { error: 'the evidence bundle of this job is not readable' });
        }
        return html(res, 200, gateHtml(bundle, undefined, ev.file, { nonce }), nonce);
      }
      throw new HttpError(404, `no route ${req.method} ${path}`);
    },
  };
}
