import { ConflictError, refOf, type KubeObject, type ObjectRef } from '../services/platform.js';

/**
 * The sandbox's API server: Kubernetes-shaped objects keyed by apiVersion group, kind, namespace and name,
 * with resourceVersion / generation bookkeeping and RFC 7386 merge patch. Istio objects are stored under
 * their group, so networking.istio.io/v1alpha3, v1beta1 and v1 name the same object, as on a cluster.
 */
export type ObjectEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject };

const groupOf = (apiVersion: string): string =>
  apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.lastIndexOf('/')) : '';
const keyOf = (r: ObjectRef): string => `${groupOf(r.apiVersion)}|${r.kind}|${r.namespace}|${r.name}`;

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Record<string, unknown> =
    target !== null && typeof target === 'object' && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Label selector of the equality form Kubernetes accepts: `app=http-lb,version in (v1,v2)`, `a!=b`, `key`. */
export function matchesSelector(
  labels: Record<string, string> | undefined,
  selector: string | undefined,
): boolean {
  if (!selector) return true;
  const l = labels ?? {};
  const terms = selector.match(/[^,(]+(?:\([^)]*\))?/g) ?? [];
  return terms.every((raw) => {
    const t = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t))) {
      const set = m[3].split(',').map((s) => s.trim());
      return m[2] === 'in' ? set.includes(l[m[1]]) : !set.includes(l[m[1]]);
    }
    if ((m = /^([\w./-]+)\s*!=\s*(.*)$/.exec(t))) return l[m[1]] !== m[2];
    if ((m = /^([\w./-]+)\s*==?\s*(.*)$/.exec(t))) return l[m[1]] === m[2];
    if ((m = /^!([\w./-]+)$/.exec(t))) return !(m[1] in l);
    return t in l;
  });
}

export class ObjectStore {
  private readonly objects = new Map<string, KubeObject>();
  private version = 1;
  private readonly listeners = new Set<(e: ObjectEvent) => void>();

  watch(fn: (e: ObjectEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(e: ObjectEvent): void {
    for (const fn of this.listeners) fn(e);
  }

  private store(obj: KubeObject, previous: KubeObject | undefined): KubeObject {
    const specChanged = !previous || JSON.stringify(previous.spec) !== JSON.stringify(obj.spec);
    const stored: KubeObject = structuredClone(obj);
    stored.metadata.namespace ??= 'default';
    stored.metadata.resourceVersion = String(++this.version);
    stored.metadata.generation = (previous?.metadata.generation ?? 0) + (specChanged ? 1 : 0) || 1;
    stored.metadata.creationTimestamp = previous?.metadata.creationTimestamp ?? new Date().toISOString();
    stored.metadata.uid = previous?.metadata.uid ?? crypto.randomUUID();
    this.objects.set(keyOf(refOf(stored)), stored);
    this.emit({ type: previous ? 'MODIFIED' : 'ADDED', object: stored });
    return structuredClone(stored);
  }

  apply(objects: KubeObject[]): KubeObject[] {
    return objects.map((o) => {
      const previous = this.objects.get(keyOf(refOf(o)));
      // Server-side apply: the given fields win, fields the caller did not mention are kept.
      const merged = previous ? (mergePatch(previous, stripServerFields(o)) as KubeObject) : o;
      return this.store(merged, previous);
    });
  }

  get(ref: ObjectRef): KubeObject | undefined {
    const o = this.objects.get(keyOf(ref));
    return o && structuredClone(o);
  }

  /** Live object without a copy, for the data plane's hot path. Callers must not mutate it. */
  peek(ref: ObjectRef): KubeObject | undefined {
    return this.objects.get(keyOf(ref));
  }

  patch(ref: ObjectRef, patch: Record<string, unknown>, resourceVersion?: string): KubeObject {
    const previous = this.objects.get(keyOf(ref));
    if (!previous) throw new Error(`${ref.kind} ${ref.namespace}/${ref.name} not found`);
    if (resourceVersion && previous.metadata.resourceVersion !== resourceVersion) {
      throw new ConflictError(ref, previous.metadata.resourceVersion);
    }
    const { metadata, ...rest } = patch as { metadata?: Record<string, unknown> };
    const cleanMeta = metadata ? { ...metadata } : undefined;
    if (cleanMeta)
      for (const k of ['name', 'namespace', 'resourceVersion', 'uid', 'generation']) delete cleanMeta[k];
    const merged = mergePatch(previous, cleanMeta ? { ...rest, metadata: cleanMeta } : rest) as KubeObject;
    return this.store(merged, previous);
  }

  delete(ref: ObjectRef): boolean {
    const k = keyOf(ref);
    const previous = this.objects.get(k);
    if (!previous) return false;
    this.objects.delete(k);
    this.emit({ type: 'DELETED', object: previous });
    return true;
  }

  /** Objects of a kind in a group (any version of it); `namespace` '' or '*' means every namespace. */
  list(apiVersion: string, kind: string, namespace: string, labelSelector?: string): KubeObject[] {
    const group = groupOf(apiVersion);
    return this.listLive(group, kind, namespace)
      .filter((o) => matchesSelector(o.metadata.labels, labelSelector))
      .map((o) => structuredClone(o));
  }

  listLive(group: string, kind: string, namespace = '*'): KubeObject[] {
    const out: KubeObject[] = [];
    for (const o of this.objects.values()) {
      if (o.kind !== kind || groupOf(o.apiVersion) !== group) continue;
      if (namespace && namespace !== '*' && o.metadata.namespace !== namespace) continue;
      out.push(o);
    }
    return out;
  }
}

function stripServerFields(o: KubeObject): KubeObject {
  const { resourceVersion: _rv, generation: _g, uid: _u, creationTimestamp: _c, ...metadata } = o.metadata;
  return { ...o, metadata: metadata as KubeObject['metadata'] };
}
