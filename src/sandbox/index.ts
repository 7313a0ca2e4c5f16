import type { Platform } from '../services/platform.js';
import { InvalidInputError } from '../util/errors.js';
import type { Fault } from './mesh.js';
import { SandboxCore, type SandboxOptions, type SandboxUrls } from './sandbox.js';

/**
 * Public entry points of the sandbox: start one in this process (`startSandbox`) or reach a detached one
 * (`connectSandbox`, through its admin API). See README.md.
 */
export type { Fault, SandboxOptions, SandboxUrls };
export { sdcManifests, MANIFEST_DIR } from './sandbox.js';

export interface SandboxHandle {
  urls: SandboxUrls;
  platform: Platform;
  setFault(workload: string, version: string | undefined, fault: Fault | null): Promise<void>;
}

export interface Sandbox extends SandboxHandle {
  stop(): Promise<void>;
  /** The in-process parts, for tests and the gRPC/admin servers. */
  readonly core: SandboxCore;
}

export async function startSandbox(opts: SandboxOptions = {}): Promise<Sandbox> {
  if (opts.netns && process.getuid?.() !== 0)
    throw new InvalidInputError('--netns needs root (it creates network namespaces and veth pairs)');
  const core = new SandboxCore(opts);
  const extras: Array<{ stop(): Promise<void> }> = [];
  try {
    await core.start();
    const { startControlServers } = await import('./control.js');
    extras.push(...(await startControlServers(core)));
  } catch (err) {
    await Promise.all(extras.map((e) => e.stop()));
    await core.stop();
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    core,
    urls: core.urls,
    platform: core.platform,
    async setFault(workload, version, fault) {
      core.setFault(workload, version, fault);
    },
    stop() {
      stopped ??= (async () => {
        await Promise.all(extras.map((e) => e.stop()));
        await core.stop();
      })();
      return stopped;
    },
  };
}

export { connectSandbox, readState, defaultStateDir } from './remote.js';
