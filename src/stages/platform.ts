/**
 * Which platform a stage command runs on: a cluster through the Kubernetes API, or a running sandbox
 * (`clover-cd sandbox up --detach`) through its admin API. Stages cannot tell them apart afterwards.
 */
import { connectSandbox } from '../sandbox/index.js';
import type { Platform } from '../services/platform.js';
import { InvalidInputError } from '../util/errors.js';

export interface PlatformChoice {
  platform?: string;
  stateDir?: string;
  kubeconfig?: string;
  context?: string;
  inCluster?: boolean;
  prometheus?: string;
  jaeger?: string;
  ingress?: string;
}

export const PLATFORMS = ['sandbox', 'kubernetes'] as const;

export async function openPlatform(o: PlatformChoice): Promise<Platform> {
  const kind = o.platform ?? 'sandbox';
  if (kind === 'sandbox') return (await connectSandbox(o.stateDir)).platform;
  if (kind === 'kubernetes') {
    // Loaded only for a cluster: the Kubernetes client is most of a stage process's start-up.
    const { createKubernetesPlatform } = await import('../services/kubernetes.js');
    return createKubernetesPlatform({
      kubeconfig: o.kubeconfig,
      context: o.context,
      inCluster: o.inCluster,
      endpoints: { prometheus: o.prometheus, jaeger: o.jaeger, ingress: o.ingress },
    });
  }
  throw new InvalidInputError(`--platform must be one of ${PLATFORMS.join(', ')}, got "${kind}"`);
}
