/**
 * Stage type keys Orca resolves, with the ones Orca still runs but that belong to
 * older providers or features. Unknown types are warnings, not errors: preconfigured webhooks and plugins
 * add their own keys, which only the target Spinnaker knows.
 */
export const CURRENT_STAGE_TYPES = new Set([
  // Kubernetes (v2 manifest provider)
  'deployManifest',
  'deleteManifest',
  'patchManifest',
  'scaleManifest',
  'undoRolloutManifest',
  'enableManifest',
  'disableManifest',
  'rollingRestartManifest',
  'findArtifactsFromResource',
  'bakeManifest',
  'runJobManifest',
  // generic
  'webhook',
  'script',
  'jenkins',
  'travis',
  'wercker',
  'concourse',
  'gitlab-ci',
  'googleCloudBuild',
  'manualJudgment',
  'wait',
  'checkPreconditions',
  'pipeline',
  'evaluateVariables',
  'kayentaCanary',
  'findArtifactFromExecution',
  'restrictExecutionDuringTimeWindow',
  'importDeploymentArtifacts',
  'savePipeline',
  'updatePipeline',
  'deletePipeline',
  // server-group providers (AWS, GCE, Titus, ...), still current there
  'bake',
  'deploy',
  'findImage',
  'findImageFromTags',
  'resizeServerGroup',
  'disableServerGroup',
  'enableServerGroup',
  'cloneServerGroup',
  'destroyServerGroup',
  'createServerGroup',
  'rollbackServerGroup',
  'rollbackCluster',
  'scaleDownCluster',
  'shrinkCluster',
  'disableCluster',
  'applySourceServerGroupCapacity',
  'runJob',
  'deployCloudFormation',
  'deleteCloudFormationChangeSet',
  'upsertLoadBalancer',
  'deleteLoadBalancer',
  'upsertSecurityGroup',
  'deleteSecurityGroup',
  'upsertImageTags',
  'tagImage',
  'modifyAwsScalingProcess',
  'upsertScalingPolicy',
  'deployService',
  'destroyService',
  'shareService',
  'unshareService',
  'createServiceKey',
  'deleteServiceKey',
  'mapLoadBalancers',
  'unmapLoadBalancers',
  'lambdaDeploymentStage',
]);

/** Types Orca may still accept but that a new pipeline should not use, with the reason. */
export const LEGACY_STAGE_TYPES: Record<string, string> = {
  findAmi: 'legacy name of "findImage" (kept as an alias by Orca)',
  canary: 'legacy ACA canary stage; Kayenta\'s "kayentaCanary" replaced it',
  deployCanary: 'legacy ACA canary stage; Kayenta\'s "kayentaCanary" replaced it',
  monitorCanary: 'legacy ACA canary stage; Kayenta\'s "kayentaCanary" replaced it',
  acaTask: 'legacy ACA canary stage; Kayenta\'s "kayentaCanary" replaced it',
};

/** Stages that talk to Clouddriver's Kubernetes provider and need cloudProvider + account. */
export const KUBERNETES_STAGE_TYPES = new Set([
  'deployManifest',
  'deleteManifest',
  'patchManifest',
  'scaleManifest',
  'undoRolloutManifest',
  'enableManifest',
  'disableManifest',
  'rollingRestartManifest',
  'findArtifactsFromResource',
  'runJobManifest',
]);

/** Fields Orca reads as JSON booleans (a string "true" is a ClassCastException or silently false). */
export const BOOLEAN_STAGE_FIELDS = [
  'failPipeline',
  'continuePipeline',
  'completeOtherBranchesThenFail',
  'skipExpressionEvaluation',
  'sendNotifications',
  'failOnFailedExpressions',
  'restrictExecutionDuringTimeWindow',
  'propagateAuthenticationContext',
  'markUnstableAsSuccessful',
];

/** Parameter and variable names that collide with Orca/Deck internals. */
export const RESERVED_NAMES = new Set([
  'strategy',
  'cloudProvider',
  'cluster',
  'credentials',
  'region',
  'zone',
  'imageName',
  'application',
]);
