/**
 * Clover's SDC request shapes — cloverctl's `set lb|server -f`, `create idsrules -f` YAML files, which
 * cloverctl POSTed as JSON to the controller's /nginx/lb, /nginx/server and /snort/addrule — read unchanged
 * and turned into the typed calls of the SDC control API (sdc.proto). Clover's replies are kept as messages.
 */
import { InvalidInputError, type InputProblem } from '../util/errors.js';
import type { SdcClient, SdcIdsRule, SdcRoute } from './sdc.js';

/** cloverctl's lbv1.yaml / lbv2.yaml: which lb, and the servers it balances over. */
export interface CloverLbChange {
  /** Deployment of the lb (`server_name`: http-lb-v2). */
  workload: string;
  /** Host Clover dialled for gRPC (`lb_name`, e.g. http-lb-v2.default; else server_name). */
  grpcHost: string;
  backends: string[];
  /** Fields read but not modelled (the sandbox lb has one upstream on port 9180 at path /). */
  ignored: string[];
}
export interface CloverServerChange {
  workload: string;
  grpcHost: string;
  routes: Array<Pick<SdcRoute, 'path' | 'prefix' | 'status' | 'body' | 'contentType'>>;
  ignored: string[];
}

export const CLOVER_MESSAGES = {
  nginxOk: 'Modified nginx config',
  nginxFailed: 'Failed to modify nginx config',
  idsAdded: 'Added to local rules',
  idsFailed: 'Failed to add to local rules',
  snortStarted: (pid: number) => `Started Snort on pid: ${pid}`,
  snortRunning: 'Snort already running',
  snortStopped: (pid: number) => `Stopped Snort on pid: ${pid}, Cleared Snort logs`,
  snortNotRunning: 'Snort is not running',
} as const;

type Doc = Record<string, unknown>;

function fail(file: string | undefined, what: string, problems: InputProblem[]): never {
  throw new InvalidInputError(
    `${file ?? 'request'}: not a valid Clover ${what} file`,
    problems.map((p) => ({ file, ...p })),
  );
}

function asDoc(doc: unknown, file: string | undefined, what: string): Doc {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    fail(file, what, [{ path: '', message: 'expected a mapping (YAML object)' }]);
  return doc as Doc;
}

/** A required string field; Clover's files quote numbers ("9180"), but plain numbers are accepted too. */
function str(d: Doc, key: string, problems: InputProblem[], required = true): string {
  const v = d[key];
  if (typeof v === 'string' && v.trim()) return v.trim();
  if (typeof v === 'number') return String(v);
  if (required)
    problems.push({
      path: key,
      message: v === undefined ? 'missing' : `expected a string, found ${JSON.stringify(v)}`,
    });
  return '';
}

function list(d: Doc, key: string, problems: InputProblem[], required: boolean): Doc[] {
  const v = d[key];
  if (v === undefined || v === null) {
    if (required) problems.push({ path: key, message: 'missing: expected a list' });
    return [];
  }
  if (!Array.isArray(v)) {
    problems.push({ path: key, message: 'expected a list' });
    return [];
  }
  return v.map((x, i) => {
    if (!x || typeof x !== 'object') problems.push({ path: `${key}[${i}]`, message: 'expected a mapping' });
    return (x ?? {}) as Doc;
  });
}

const ignoredFields = (d: Doc, used: string[]) => Object.keys(d).filter((k) => !used.includes(k));

/** lbv2.yaml → http-lb-v2 balances over clover-server4, clover-server5. */
export function parseCloverLb(doc: unknown, file?: string): CloverLbChange {
  const d = asDoc(doc, file, 'lb');
  const problems: InputProblem[] = [];
  const workload = str(d, 'server_name', problems);
  const backends = list(d, 'lb_list', problems, true).map((x, i) => {
    const url = str(x, 'url', []).replace(/^https?:\/\//, '');
    if (!url)
      problems.push({
        path: `lb_list[${i}].url`,
        message: 'missing: expected "host:port", e.g. clover-server4:9180',
      });
    return url;
  });
  if (!backends.length && !problems.length)
    problems.push({ path: 'lb_list', message: 'must name at least one server' });
  if (problems.length) fail(file, 'lb', problems);
  const lbName = str(d, 'lb_name', [], false);
  return {
    workload,
    grpcHost: lbName || workload,
    backends,
    ignored: ['server_port', 'lb_group', 'lb_path'].filter((k) => d[k] !== undefined),
  };
}

const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  html: 'text/html',
  txt: 'text/plain',
  json: 'application/json',
};

/**
 * server.yaml → the server's routes: each `locations[]` entry a prefix route (nginx `location <uri_match>`)
 * answering 200 with its directive, each `files[]` entry an exact route at `/<dest_file>` below the site root.
 */
export function parseCloverServer(doc: unknown, file?: string): CloverServerChange {
  const d = asDoc(doc, file, 'server');
  const problems: InputProblem[] = [];
  const workload = str(d, 'server_name', problems);
  const siteRoot = (str(d, 'site_root', [], false) || '/var/www/html').replace(/^\/+|\/+$/g, '');
  const routes: CloverServerChange['routes'] = [];
  list(d, 'locations', problems, false).forEach((l, i) => {
    const path = str(l, 'uri_match', []);
    if (!path.startsWith('/'))
      problems.push({
        path: `locations[${i}].uri_match`,
        message: `expected a path starting with "/", found ${JSON.stringify(l.uri_match)}`,
      });
    const directive = str(l, 'directive', [], false);
    routes.push({
      path,
      prefix: true,
      status: 200,
      body: `${workload}: location ${path}${directive ? ` (${directive})` : ''}\n`,
      contentType: 'text/plain',
    });
  });
  list(d, 'files', problems, false).forEach((f, i) => {
    const dest = str(f, 'dest_file', []);
    if (!dest) problems.push({ path: `files[${i}].dest_file`, message: 'missing' });
    const rel = dest.replace(/^\/+/, '');
    const path = '/' + (rel.startsWith(siteRoot + '/') ? rel.slice(siteRoot.length + 1) : rel);
    const ext = path.slice(path.lastIndexOf('.') + 1).toLowerCase();
    routes.push({
      path,
      prefix: false,
      status: 200,
      body: `${workload}: ${str(f, 'src_file', [], false) || dest}\n`,
      contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream',
    });
  });
  if (problems.length) fail(file, 'server', problems);
  return {
    workload,
    grpcHost: workload,
    routes,
    ignored: ignoredFields(d, ['server_name', 'site_root', 'locations', 'files']),
  };
}

/** idsrule_*.yaml → one rule; Clover's `content` carries its own quotes ('"asafaweb.com"'), '' means none. */
export function parseCloverIdsRule(doc: unknown, file?: string): SdcIdsRule {
  const d = asDoc(doc, file, 'IDS rule');
  const problems: InputProblem[] = [];
  const sid = Number(str(d, 'sid', problems));
  if (d.sid !== undefined && !(Number.isInteger(sid) && sid > 0))
    problems.push({ path: 'sid', message: `expected a positive number, found ${JSON.stringify(d.sid)}` });
  const protocol = str(d, 'protocol', problems).toLowerCase();
  if (protocol && !['tcp', 'udp', 'icmp', 'ip'].includes(protocol))
    problems.push({ path: 'protocol', message: `expected tcp, udp, icmp or ip, found "${protocol}"` });
  const msg = str(d, 'msg', problems);
  const revText = str(d, 'rev', [], false) || '1';
  const rev = Number(revText);
  if (!(Number.isInteger(rev) && rev > 0))
    problems.push({
      path: 'rev',
      message: `expected a positive number such as "001", found ${JSON.stringify(d.rev)}`,
    });
  let content = typeof d.content === 'string' ? d.content.trim() : '';
  let nocase = false;
  // Snort modifiers after the quoted string ('"x"; nocase') are accepted for nocase only.
  const m = /^"((?:[^"\\]|\\.)*)"\s*(?:;\s*(nocase)\s*;?)?$/.exec(content);
  if (m) {
    content = m[1];
    nocase = Boolean(m[2]);
  }
  if (problems.length) fail(file, 'IDS rule', problems);
  return {
    sid,
    rev,
    msg,
    protocol,
    content,
    nocase,
    srcIp: str(d, 'src_ip', [], false) || 'any',
    srcPort: str(d, 'src_port', [], false) || 'any',
    destIp: str(d, 'dest_ip', [], false) || '$HOME_NET',
    destPort: str(d, 'dest_port', [], false) || 'any',
  };
}

/** Apply a parsed change through an SDC client and answer with Clover's message. */
export async function applyCloverLb(
  client: SdcClient,
  c: CloverLbChange,
): Promise<{ message: string; backends: string[] }> {
  const r = await client.setBackends(c.workload, c.backends);
  return { message: CLOVER_MESSAGES.nginxOk, backends: r.backends };
}
export async function applyCloverServer(
  client: SdcClient,
  c: CloverServerChange,
): Promise<{ message: string; routes: SdcRoute[] }> {
  const r = await client.setRoutes(c.workload, c.routes);
  return { message: CLOVER_MESSAGES.nginxOk, routes: r.routes };
}
export async function addCloverIdsRule(
  client: SdcClient,
  rule: SdcIdsRule,
): Promise<{ message: string; ruleText: string[] }> {
  const r = await client.addIdsRule(rule);
  return { message: CLOVER_MESSAGES.idsAdded, ruleText: r.ruleText };
}
export async function startCloverIds(
  client: SdcClient,
): Promise<{ message: string; running: boolean; pid: number }> {
  const s = await client.startIds();
  return {
    message: s.changed ? CLOVER_MESSAGES.snortStarted(s.pid) : CLOVER_MESSAGES.snortRunning,
    running: s.running,
    pid: s.pid,
  };
}
export async function stopCloverIds(
  client: SdcClient,
): Promise<{ message: string; running: boolean; pid: number }> {
  const s = await client.stopIds();
  return {
    message: s.changed ? CLOVER_MESSAGES.snortStopped(s.pid) : CLOVER_MESSAGES.snortNotRunning,
    running: s.running,
    pid: s.pid,
  };
}

/** The gRPC address in a cluster, by Clover's convention: the host from the file on port 50054 (nginx) / 50052 (snort-ids). */
export function clusterAddress(kind: 'nginx' | 'ids', host?: string): string {
  return kind === 'ids' ? `${host ?? 'snort-ids.default'}:50052` : `${host}:50054`;
}
