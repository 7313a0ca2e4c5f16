/**
 * The one TrafficRouter, for every mesh: a mesh supplies its route object and the pure functions that read and
 * patch it (`MeshRoutes`); this does the I/O with the guarantees every mesh shares. Routes and release state
 * are written in one JSON merge patch computed from a fresh read and guarded by its resourceVersion (a
 * conflict re-reads and recomputes, a bounded number of times), so they never disagree; the split is checked
 * on observed traffic by the same function whatever the mesh.
 */
import type { TrafficTarget } from '../canary/plan.js';
import {
  describeRef,
  ensureObjects,
  modifyWithRetry,
  requireObject,
  type KubeObject,
  type Platform,
} from '../services/platform.js';
import { readState, stateAnnotations } from './state.js';
import type { MeshRoutes, RouterSnapshot, RouterWrite, SplitCheck, TrafficRouter } from './types.js';
import { verifySplit } from './verify.js';

type Json = Record<string, unknown>;

/** The mesh's route patch with the state's annotations merged into its metadata: one write for both. */
export function withState(patch: Json, annotations: Record<string, string>): Json {
  const metadata = (patch.metadata ?? {}) as Json;
  const own = (metadata.annotations ?? {}) as Record<string, string | null>;
  return { ...patch, metadata: { ...metadata, annotations: { ...own, ...annotations } } };
}

export class MeshRouter implements TrafficRouter {
  readonly mesh: string;
  readonly object: string;

  constructor(
    private readonly platform: Platform,
    private readonly routes: MeshRoutes,
  ) {
    this.mesh = routes.mesh;
    this.object = describeRef(routes.ref);
  }

  private snapshot(obj: KubeObject): RouterSnapshot {
    return { routes: this.routes.observe(obj), state: readState(obj) };
  }

  private read(): Promise<KubeObject> {
    return requireObject(this.platform, this.routes.ref, this.routes.missingHint(this.platform.kind));
  }

  async prepare(): Promise<RouterSnapshot> {
    // The managed route must exist: observe names what is missing (exit 2) before anything is written.
    const snap = this.snapshot(await this.read());
    await ensureObjects(this.platform, this.routes.companions());
    return snap;
  }

  async observe(): Promise<RouterSnapshot> {
    return this.snapshot(await this.read());
  }

  async apply(decide: (current: RouterSnapshot) => RouterWrite | undefined): Promise<RouterSnapshot> {
    const written = await modifyWithRetry(this.platform, this.routes.ref, (current) => {
      const write = decide(this.snapshot(current));
      if (!write) return undefined;
      const annotations = stateAnnotations(write.state);
      return write.target
        ? withState(this.routes.patch(current, write.target), annotations)
        : { metadata: { annotations } };
    });
    return this.snapshot(written);
  }

  verifySplit(
    target: TrafficTarget,
    observed: { stable: number; candidate: number },
    confidence: number,
  ): SplitCheck {
    return verifySplit(target, observed, confidence);
  }
}
