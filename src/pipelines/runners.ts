/**
 * How a release action (deploy, traffic, load, gate, promote, rollback) becomes a Spinnaker stage, per
 * `spinnaker.runner`: a `webhook` to the clover-cd stage server — inline, or a preconfigured
 * webhook type of Orca's configuration (`spinnaker.stages: preconfigured`) —, a `jenkins` job that runs
 * clover-cd and archives a property file, or a Kubernetes Job (`runJobManifest`, alias `runJob`).
 * No stage ever carries a secret: headers with secrets live only in Orca's configuration (preconfigured.ts).
 */
import type { ReleaseSpec, SpinnakerSpec } from '../spec/types.js';
import { STAGE_SERVER_POLLING, type StageAction } from '../contract/index.js';
import { defaultImage } from '../contract/images.js';
import { preconfiguredStage } from './preconfigured.js';
import type { Json } from './types.js';

export { STAGE_SERVER_POLLING };

export type ReleaseAction = StageAction;

export interface ActionParams {
  weight?: number;
  step?: number;
  window?: string;
}

/** Fields of one action stage, before graph fields (refId, requisites, guards) are added. */
export type StageBody = Record<string, unknown> & { type: string };

export const PROPERTY_FILE = 'clover-cd.properties';
export const RUNJOB_CONTAINER = 'clover-cd';
const EXECUTION_ID = "${execution['id']}";
const EXECUTION_NAME = "${execution['name']}";

/** Command line a Jenkins job or Kubernetes Job runs for one action (implemented by `clover-cd stage`). */
export function stageCommandArgs(action: ReleaseAction, params: ActionParams): string[] {
  const args = ['stage', action, '--spec-env', 'CLOVER_CD_SPEC'];
  if (params.weight !== undefined) args.push('--weight', String(params.weight));
  if (params.step !== undefined) args.push('--step', String(params.step));
  if (params.window !== undefined) args.push('--window', params.window);
  return args;
}

/**
 * What an inline stage declares about how the stage server knows its caller (Orca keeps unknown stage fields and
 * sends nothing of it): `pipeline validate` reads it, and the local runner plays the mesh it names.
 */
export const STAGE_AUTH_FIELD = 'cloverCdAuth';
export interface StageAuthDeclaration {
  mode: 'mesh-identity';
  /** The SPIFFE id the server trusts (`serve --trust-mesh-principal`). */
  principal: string;
}

function webhookStage(
  sp: SpinnakerSpec,
  release: string,
  spec: Json,
  action: ReleaseAction,
  params: ActionParams,
): StageBody {
  const server = sp.stageServer.url.replace(/\/+$/, '');
  // No Authorization header: Spinnaker resolves secret references only in its configuration files (a reference
  // here would be sent literally). The server knows Orca by its mesh identity (render refuses inline stages without).
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  const auth: StageAuthDeclaration = { mode: 'mesh-identity', principal: sp.stageServer.meshAuth!.principal };
  const rel = encodeURIComponent(release);
  return {
    type: 'webhook',
    url: `${server}/api/v1/releases/${rel}/${action}`,
    method: 'POST',
    customHeaders: headers,
    payload: { spec, ...params, execution: { id: EXECUTION_ID, pipeline: EXECUTION_NAME } },
    // 504 from an ingress in front of the stage server is worth a retry, not an immediate TERMINAL.
    failFastStatusCodes: [],
    ...STAGE_SERVER_POLLING,
    signalCancellation: true,
    cancelEndpoint: `${server}/api/v1/releases/${rel}/cancel`,
    cancelMethod: 'POST',
    cancelPayload: {},
    [STAGE_AUTH_FIELD]: auth,
  };
}

function jenkinsStage(
  sp: SpinnakerSpec,
  release: string,
  spec: Json,
  action: ReleaseAction,
  params: ActionParams,
): StageBody {
  const jenkins = sp.jenkins!;
  const parameters: Record<string, string> = {
    ACTION: action,
    RELEASE: release,
    SPEC: Buffer.from(JSON.stringify(spec)).toString('base64'),
    EXECUTION_ID: EXECUTION_ID,
    PIPELINE: EXECUTION_NAME,
  };
  if (params.weight !== undefined) parameters.WEIGHT = String(params.weight);
  if (params.step !== undefined) parameters.STEP = String(params.step);
  if (params.window !== undefined) parameters.WINDOW = params.window;
  return {
    type: 'jenkins',
    master: jenkins.master,
    job: jenkins.job,
    parameters,
    propertyFile: PROPERTY_FILE,
    markUnstableAsSuccessful: false,
    waitForCompletion: true,
  };
}

function runJobStage(
  sp: SpinnakerSpec,
  release: string,
  application: string,
  spec: Json,
  action: ReleaseAction,
  params: ActionParams,
): StageBody {
  const rj = sp.runJob!;
  const namespace = rj.namespace ?? 'default';
  const labels = {
    'app.kubernetes.io/name': 'clover-cd',
    'clover-cd/release': release,
    'clover-cd/action': action,
  };
  return {
    type: 'runJobManifest',
    alias: 'runJob',
    cloudProvider: 'kubernetes',
    account: sp.account,
    credentials: sp.account,
    application,
    source: 'text',
    manifest: {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { generateName: `${release}-${action}-`.slice(0, 58), namespace, labels },
      spec: {
        backoffLimit: 0,
        ttlSecondsAfterFinished: 86400,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: 'Never',
            ...(rj.serviceAccount ? { serviceAccountName: rj.serviceAccount } : {}),
            containers: [
              {
                name: RUNJOB_CONTAINER,
                image: rj.image ?? defaultImage('clover-cd'),
                // Exec form: `clover-cd` is on PATH in clover-cd's images, which have no shell.
                command: ['clover-cd'],
                args: [...stageCommandArgs(action, params), '--property-format', 'spinnaker'],
                env: [
                  { name: 'CLOVER_CD_SPEC', value: JSON.stringify(spec) },
                  { name: 'CLOVER_CD_EXECUTION_ID', value: EXECUTION_ID },
                ],
              },
            ],
          },
        },
      },
    },
    // The container prints SPINNAKER_PROPERTY_* lines; Orca turns them into stage outputs.
    consumeArtifactSource: 'propertyFile',
    propertyFile: RUNJOB_CONTAINER,
  };
}

/** The stage body for one action, for the runner the spec selects (webhook by default). */
export function actionStage(
  spec: ReleaseSpec,
  payloadSpec: Json,
  application: string,
  action: ReleaseAction,
  params: ActionParams,
): StageBody {
  const sp = spec.spinnaker!;
  const release = spec.metadata.name;
  switch (sp.runner ?? 'webhook') {
    case 'jenkins':
      return jenkinsStage(sp, release, payloadSpec, action, params);
    case 'runJob':
      return runJobStage(sp, release, application, payloadSpec, action, params);
    default:
      if (sp.stages === 'preconfigured') return preconfiguredStage(release, payloadSpec, action, params.step);
      return webhookStage(sp, release, payloadSpec, action, params);
  }
}
