/**
 * A Kubernetes API server on loopback that behaves like the real one for the calls clover-cd makes:
 * discovery (APIResourceList per group version), get / list (labelSelector, fieldSelector on name) /
 * create / delete, PATCH by content type (merge patch, strategic merge refused with 415 on custom
 * resources, server-side apply needing fieldManager), resourceVersion preconditions answered with 409 in
 * the API server's Status shape, 404 Status bodies, generation bumps on spec changes, and watch streams
 * (newline-delimited events from a resourceVersion). Every request is recorded for assertions.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

type Obj = Record<string, any>;
export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  contentType?: string;
  authorization?: string;
  body?: unknown;
}

interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  custom: boolean;
}

const TYPES: ResourceType[] = [
  { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false, custom: false },
  { group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true, custom: false },
  {
    group: 'apps',
    version: 'v1',
    kind: 'Deployment',
    plural: 'deployments',
    namespaced: true,
    custom: false,
  },
  ...['v1alpha3', 'v1beta1', 'v1'].flatMap((version) => [
    {
      group: 'networking.istio.io',
      version,
      kind: 'VirtualService',
      plural: 'virtualservices',
      namespaced: true,
      custom: true,
    },
    {
      group: 'networking.istio.io',
      version,
      kind: 'DestinationRule',
      plural: 'destinationrules',
      namespaced: true,
      custom: true,
    },
  ]),
];

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Obj =
    target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Obj) } : {};
  for (const [k, v] of Object.entries(patch as Obj)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const status = (code: number, reason: string, message: string, details?: Obj) => ({
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message,
  reason,
  details,
  code,
});

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  /** API groups this server does not serve (a CRD that is not installed). */
  missingGroups = new Set<string>();
  private get types(): ResourceType[] {
    return TYPES.filter((t) => !this.missingGroups.has(t.group));
  }
  private server!: Server;
  private rv = 100;
  /** key: group/plural/namespace/name (storage is per group, shared across versions, as in the API server). */
  private store = new Map<string, Obj>();
  private events: Array<{ rv: number; type: string; key: string; object: Obj }> = [];
  private watchers = new Set<{ res: ServerResponse; match: (key: string, o: Obj) => boolean }>();
  /** Statuses to answer the next matching requests with (e.g. a 409 race or a 503), consumed in order. */
  readonly injected: Array<{ method: string; pathIncludes: string; status: number; body?: Obj }> = [];
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const w of this.watchers) w.res.end();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** A kubeconfig for this server (plain http needs skipTLSVerify with client-node). */
  kubeconfig(token = 'fake-token-123456'): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'tester', user: { token } }],
      contexts: [
        { name: 'fake', context: { cluster: 'fake', user: 'tester', namespace: 'default' } },
        { name: 'other', context: { cluster: 'fake', user: 'tester', namespace: 'sdc' } },
      ],
      'current-context': 'fake',
    });
  }

  private typeOf(apiVersion: string, kind: string): ResourceType {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    const t = TYPES.find((x) => x.group === group && x.version === version && x.kind === kind);
    if (!t) throw new Error(`fake API server has no ${apiVersion} ${kind}`);
    return t;
  }

  private key(t: ResourceType, ns: string | undefined, name: string) {
    return `${t.group}/${t.plural}/${t.namespaced ? ns : ''}/${name}`;
  }

  private record(type: string, key: string, object: Obj) {
    this.events.push({
      rv: Number(object.metadata.resourceVersion),
      type,
      key,
      object: structuredClone(object),
    });
    for (const w of this.watchers)
      if (w.match(key, object)) w.res.write(JSON.stringify({ type, object }) + '\n');
  }

  /** Put an object as a controller would (bumps resourceVersion, notifies watchers). */
  put(o: Obj): Obj {
    const t = this.typeOf(o.apiVersion, o.kind);
    const key = this.key(t, o.metadata.namespace, o.metadata.name);
    const prev = this.store.get(key);
    const next = structuredClone(o);
    next.metadata.resourceVersion = String(++this.rv);
    next.metadata.generation = prev
      ? JSON.stringify(prev.spec) === JSON.stringify(next.spec)
        ? prev.metadata.generation
        : prev.metadata.generation + 1
      : (next.metadata.generation ?? 1);
    next.metadata.uid ??= prev?.metadata.uid ?? `uid-${this.rv}`;
    this.store.set(key, next);
    this.record(prev ? 'MODIFIED' : 'ADDED', key, next);
    return next;
  }

  object(apiVersion: string, kind: string, namespace: string, name: string): Obj | undefined {
    const o = this.store.get(this.key(this.typeOf(apiVersion, kind), namespace, name));
    return o && structuredClone({ ...o, apiVersion });
  }

  private send(res: ServerResponse, code: number, body: unknown) {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', this.url);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      return this.send(res, 400, status(400, 'BadRequest', 'the body of the request could not be decoded'));
    }
    const rec: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType: req.headers['content-type'],
      authorization: req.headers.authorization,
      body,
    };
    this.requests.push(rec);
    const inj = this.injected.findIndex((i) => i.method === rec.method && rec.path.includes(i.pathIncludes));
    if (inj >= 0) {
      const [i] = this.injected.splice(inj, 1);
      return this.send(res, i.status, i.body ?? status(i.status, 'InternalError', 'injected'));
    }
    if (req.headers.authorization !== 'Bearer fake-token-123456')
      return this.send(res, 401, status(401, 'Unauthorized', 'Unauthorized'));
    // Discovery
    const disc = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))$/.exec(url.pathname);
    if (disc && rec.method === 'GET') {
      const group = disc[1] ? '' : disc[2];
      const version = disc[1] ?? disc[3];
      const resources = this.types
        .filter((t) => t.group === group && t.version === version)
        .map((t) => ({
          name: t.plural,
          singularName: t.kind.toLowerCase(),
          namespaced: t.namespaced,
          kind: t.kind,
          verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
        }));
      if (!resources.length)
        return this.send(
          res,
          404,
          status(404, 'NotFound', 'the server could not find the requested resource'),
        );
      return this.send(res, 200, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: group ? `${group}/${version}` : version,
        resources,
      });
    }
    const m =
      /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))(?:\/namespaces\/([^/]+))?\/([^/]+)(?:\/([^/]+))?$/.exec(
        url.pathname,
      );
    if (!m)
      return this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const group = m[1] ? '' : m[2];
    const version = m[1] ?? m[3];
    const [ns, plural, name] = [m[4], m[5], m[6]];
    const t = this.types.find((x) => x.group === group && x.version === version && x.plural === plural);
    if (!t)
      return this.send(res, 404, status(404, 'NotFound', 'the server could not find the requested resource'));
    const apiVersion = group ? `${group}/${version}` : version;
    const resName = `${t.plural}${group ? `.${group}` : ''}`;
    const notFound = () =>
      this.send(
        res,
        404,
        status(404, 'NotFound', `${resName} "${name}" not found`, { name, group, kind: t.plural }),
      );
    const withVersion = (o: Obj) => ({ ...o, apiVersion, kind: t.kind });
    const key = name ? this.key(t, ns, name) : '';
    const current = name ? this.store.get(key) : undefined;

    switch (rec.method) {
      case 'GET': {
        if (name) return current ? this.send(res, 200, withVersion(current)) : notFound();
        const prefix = `${t.group}/${t.plural}/${t.namespaced ? (ns ?? '') : ''}`;
        const sel = url.searchParams.get('labelSelector');
        const fsel = url.searchParams.get('fieldSelector');
        const matchObj = (k: string, o: Obj) =>
          (ns ? k.startsWith(prefix + '/') : k.startsWith(`${t.group}/${t.plural}/`)) &&
          (!sel ||
            sel.split(',').every((p) => {
              const [lk, lv] = p.split('=');
              return o.metadata.labels?.[lk] === lv;
            })) &&
          (!fsel ||
            fsel.split(',').every((p) => {
              const [fk, fv] = p.split('=');
              return fk === 'metadata.name' ? o.metadata.name === fv : true;
            }));
        if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
          res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
          const from = Number(url.searchParams.get('resourceVersion') ?? this.rv);
          for (const e of this.events)
            if (e.rv > from && matchObj(e.key, e.object))
              res.write(JSON.stringify({ type: e.type, object: withVersion(e.object) }) + '\n');
          const w = { res, match: (k: string, o: Obj) => matchObj(k, o) };
          this.watchers.add(w);
          const secs = Number(url.searchParams.get('timeoutSeconds') ?? 30);
          const timer = setTimeout(() => res.end(), secs * 1000);
          res.on('close', () => {
            clearTimeout(timer);
            this.watchers.delete(w);
          });
          return;
        }
        const items = [...this.store.entries()]
          .filter(([k, o]) => matchObj(k, o))
          .map(([, o]) => withVersion(o));
        return this.send(res, 200, {
          apiVersion,
          kind: `${t.kind}List`,
          metadata: { resourceVersion: String(this.rv) },
          items,
        });
      }
      case 'POST': {
        const o = body as Obj;
        if (this.store.get(this.key(t, ns, o.metadata.name))) {
          return this.send(
            res,
            409,
            status(409, 'AlreadyExists', `${resName} "${o.metadata.name}" already exists`, {
              name: o.metadata.name,
              group,
              kind: t.plural,
            }),
          );
        }
        return this.send(
          res,
          201,
          withVersion(
            this.put({ ...o, apiVersion, kind: t.kind, metadata: { ...o.metadata, namespace: ns } }),
          ),
        );
      }
      case 'DELETE': {
        if (!current) return notFound();
        this.store.delete(key);
        const gone = { ...current, metadata: { ...current.metadata, resourceVersion: String(++this.rv) } };
        this.record('DELETED', key, gone);
        return this.send(res, 200, {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Success',
          details: { name, group, kind: t.plural },
        });
      }
      case 'PATCH': {
        const ct = (req.headers['content-type'] ?? '').split(';')[0];
        if (ct === 'application/apply-patch+yaml') {
          if (!url.searchParams.get('fieldManager'))
            return this.send(
              res,
              400,
              status(
                400,
                'BadRequest',
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
              ),
            );
          const applied = mergePatch(current ?? {}, body) as Obj;
          return this.send(
            res,
            current ? 200 : 201,
            withVersion(
              this.put({
                ...applied,
                apiVersion,
                kind: t.kind,
                metadata: { ...applied.metadata, namespace: ns },
              }),
            ),
          );
        }
        if (ct === 'application/strategic-merge-patch+json' && t.custom) {
          return this.send(
            res,
            415,
            status(
              415,
              'UnsupportedMediaType',
              `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
            ),
          );
        }
        if (ct !== 'application/merge-patch+json' && ct !== 'application/strategic-merge-patch+json') {
          return this.send(
            res,
            415,
            status(
              415,
              'UnsupportedMediaType',
              `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`,
            ),
          );
        }
        if (!current) return notFound();
        const want = (body as Obj)?.metadata?.resourceVersion;
        if (want !== undefined && want !== current.metadata.resourceVersion) {
          return this.send(
            res,
            409,
            status(
              409,
              'Conflict',
              `Operation cannot be fulfilled on ${resName} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
              { name, group, kind: t.plural },
            ),
          );
        }
        const merged = mergePatch(current, body) as Obj;
        return this.send(
          res,
          200,
          withVersion(
            this.put({
              ...merged,
              apiVersion,
              kind: t.kind,
              metadata: { ...merged.metadata, name, namespace: ns },
            }),
          ),
        );
      }
      default:
        return this.send(res, 405, status(405, 'MethodNotAllowed', `${rec.method} is not supported`));
    }
  }
}

export async function startFakeKubeApi(): Promise<FakeKubeApi> {
  return new FakeKubeApi().start();
}
