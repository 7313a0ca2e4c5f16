/**
 * The release spec (`apiVersion: clover-cd/v1`, `kind: Release`) as the rest of clover-cd sees it.
 * Durations and percentages stay as the user wrote them ("60s", "1%"); helpers in util/units parse them.
 */
import type { Mesh, MetricsSource } from '../contract/index.js';

export type Duration = string; // "500ms" | "30s" | "2m" | "1h"
export type Percent = string; // "1%" | "0.5%"

export interface ReleaseSpec {
  apiVersion: 'clover-cd/v1';
  kind: 'Release';
  metadata: { name: string; labels?: Record<string, string> };
  application: string;
  service: ServiceTarget;
  strategy: Strategy;
  load?: LoadSpec;
  gate?: GateSpec;
  /** Named PromQL query templates, for metric rules (`{ metric: { template: <name>, … } }`). */
  metrics?: Record<string, MetricTemplate>;
  spinnaker?: SpinnakerSpec;
  github?: GithubSpec;
}

export interface ServiceTarget {
  name: string;
  namespace: string;
  /** Host the VirtualService routes (defaults to `name`). */
  host?: string;
  port: number;
  /** Pod label that carries the version; DestinationRule subsets select on it. */
  versionLabel?: string;
  stable: string;
  candidate: string;
  /** Image of the candidate, when clover-cd derives the candidate Deployment from the stable one. */
  candidateImage?: string;
  /** Paths (relative to the spec) of manifests that deploy the candidate. */
  candidateManifests?: string[];
  /** Deployment of the candidate that must be ready before traffic moves (default `<name>-<candidate>`). */
  candidateWorkload?: string;
  /** How long to wait for the candidate to become ready before giving up with exit 4 (default 5m). */
  readyTimeout?: string;
  /** Existing VirtualService / gateway names, when clover-cd manages routes of an existing object. */
  virtualService?: string;
  gateways?: string[];
  /** The mesh whose routes carry the release (default istio): picks the traffic router and the telemetry names. */
  mesh?: Mesh;
  /** gateway-api: the HTTPRoute that holds the service's routes (default `name`). */
  httpRoute?: string;
  /** gateway-api: the Service of each version, as backendRefs name them (default `<name>-<version>`). */
  backends?: { stable?: string; candidate?: string };
}

export interface CanaryStrategy {
  steps?: number[];
  stepWeight?: number;
  maxWeight?: number;
  /** Analysis window per step (load + gate). */
  window: Duration;
  /** Weights after which a manual judgment is required before going on. */
  judgmentAt?: number[];
  /** How many times an inconclusive step is repeated before rolling back. */
  maxInconclusive?: number;
}

export interface BlueGreenStrategy {
  previewWindow: Duration;
  /** Ask for a manual judgment before switching (default false). */
  judgment?: boolean;
  maxInconclusive?: number;
}

export interface HttpMatchValue {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface AbTestStrategy {
  /** Requests matching ANY entry go to the candidate; within an entry all conditions must match. */
  match: Array<{ headers?: Record<string, HttpMatchValue>; cookie?: HttpMatchValue }>;
  window: Duration;
  judgment?: boolean;
  maxInconclusive?: number;
}

export interface MirrorPhase {
  /** Share of stable traffic copied to the candidate, "100%" by default. */
  percentage?: Percent;
  window: Duration;
}

export interface Strategy {
  canary?: CanaryStrategy;
  blueGreen?: BlueGreenStrategy;
  abTest?: AbTestStrategy;
  mirror?: MirrorPhase;
}

export type StrategyKind = 'canary' | 'blueGreen' | 'abTest';

export interface LoadSpec {
  /** Path to a JMeter plan in Clover's jmeter_testplan.yaml form, or the plan inline. */
  plan: string | Record<string, unknown>;
  engine?: 'auto' | 'jmeter' | 'builtin';
  /** Where load is sent (the ingress of the mesh); defaults to the plan's URLs. */
  target?: string;
  /**
   * Distributed JMeter engines the platform starts for each step's window (each runs the whole plan, so
   * load = engines x plan); absent or 0 = the load is sent from the process that runs the step.
   */
  engines?: number;
  /** Each engine's requests and limits (Kubernetes quantities). */
  resources?: { cpu?: string; memory?: string };
}

export type GateRule =
  | { conservation: { hops?: string[]; fanOut?: Record<string, number>; tolerance?: number | Percent } }
  | { split: { confidence?: number; alphaWeight?: number } }
  | {
      errorRate: {
        max: Percent;
        version?: 'candidate' | 'stable';
        route?: string;
        perRoute?: boolean;
        alpha?: number;
        alphaWeight?: number;
        routeMax?: Percent;
      };
    }
  | {
      latency: {
        percentile: number;
        max: Duration;
        version?: 'candidate' | 'stable';
        route?: string;
        alpha?: number;
        alphaWeight?: number;
      };
    }
  | {
      count: {
        route?: string;
        status?: number | string;
        userAgent?: string;
        expect: number | 'all' | 'none';
      };
    }
  | {
      share: {
        route?: string;
        status?: number | string;
        userAgent?: string;
        expect: Percent;
        tolerance: Percent;
      };
    }
  | {
      compareLatency: {
        alpha?: number;
        alphaWeight?: number;
        percentile?: number;
        maxIncrease?: Percent;
        detect?: Percent;
        route?: string;
        /** @deprecated Cliff's δ, no longer judged */ maxEffect?: number;
      };
    }
  | {
      compareErrors: {
        alpha?: number;
        alphaWeight?: number;
        maxIncrease?: Percent;
        detect?: Percent;
        routeDetect?: Percent;
        route?: string;
        perRoute?: boolean;
      };
    }
  | {
      tail: {
        percentiles?: number[];
        maxIncrease?: Percent;
        detect?: Percent;
        alpha?: number;
        alphaWeight?: number;
        route?: string;
      };
    }
  | {
      l4: {
        resetRate?: Percent;
        retransmitRate?: Percent;
        connectFailures?: number;
        compare?: boolean;
        required?: boolean;
      };
    }
  | { metric: MetricRuleBody };

/** A query written once, used by metric rules by name (spec/metric-query.ts). */
export interface MetricTemplate {
  query: string;
  /** A query counting the samples the value rests on (for minSamples). */
  samples?: string;
}

/**
 * A PromQL query judged at the window's end against a threshold, a range, or the stable version's value of
 * the same query. Not a statistical test: it spends none of gate.alpha.
 */
export interface MetricRuleBody {
  name?: string;
  query?: string;
  template?: string;
  samples?: string;
  minSamples?: number;
  max?: number;
  min?: number;
  compare?: { ratio?: number; difference?: number; direction?: 'increase' | 'decrease' };
}

export interface GateSpec {
  /**
   * The false-alarm budget: the chance the release rolls back a healthy candidate ("1%", default). Each
   * analysed step's window spends its part (validators/budget.ts `windowShare`), over every statistical test
   * by weighted Bonferroni; a rule's own `alpha` is taken off the top (a window spends the same part of it).
   */
  alpha?: Percent | number;
  /** The chance a regression as large as a rule's `detect` is passed ("5%", default). */
  beta?: Percent | number;
  /**
   * Not a spec field (the schema refuses it): set by the release engine on the spec one analysis window is
   * judged with — the part of alpha that window spends (validators/budget.ts `windowShare`).
   */
  windowShare?: { share: number; note: string };
  /** Routes judged by a perRoute rule, largest first (default 8). */
  maxRoutes?: number;
  /** A route with fewer candidate requests need not pass (it can still fail); default minSamples. */
  minRouteSamples?: number;
  /** Requests per second the service usually receives ("50/s"): the plan says when each step can decide. */
  requestRate?: string;
  /** Per-version minimum of requests in a window; below it a rule is inconclusive. */
  minSamples?: number;
  /** Where metric evidence comes from. */
  metrics?: { source: MetricsSource; url?: string; targets?: string[]; scrapeInterval?: Duration };
  tracing?: { url: string };
  /**
   * Share of requests the tracer keeps ("1%", or a fraction such as 0.01). Without it the rate is read from
   * the root spans' sampler.type / sampler.param tags; below 100% trace counts are never used as exact.
   */
  traceSampling?: Percent | number;
  /**
   * Longest an analysis window may grow while the candidate has fewer requests than the rules need (the
   * planned sample size); the step's window is the shortest. Default: 6 × the step's window.
   */
  maxWindow?: Duration;
  /**
   * Still inconclusive after the longest window and maxInconclusive more windows: `fail` rolls back (exit 3),
   * `hold` keeps the weight and stops (exit 3; the next run analyses again). Default fail.
   */
  onInconclusive?: 'fail' | 'hold';
  rules: GateRule[];
}

export type StageRunner = 'webhook' | 'jenkins' | 'runJob';

export interface SecretRef {
  /** Environment variable that holds the secret at run time. */
  env?: string;
  /** File that holds it (e.g. a mounted Kubernetes Secret). */
  file?: string;
  /**
   * Spinnaker-side secret reference ("encrypted:k8s!n:x!k:y"), resolved by Spinnaker in its configuration files
   * only: written into orca-local.yml by `pipeline orca-config` (spinnaker.stages: preconfigured), never into
   * pipeline JSON.
   */
  spinnaker?: string;
}

/**
 * Inline webhook stages cannot carry a secret, so the stage server knows their caller by its mesh identity: the
 * server runs with `--trust-mesh-principal <principal>` behind an Istio sidecar, and
 * deploy/clover-cd/overlays/mesh-auth admits only that principal (mutual TLS, AuthorizationPolicy).
 */
export interface MeshAuth {
  /** Orca's workload identity, `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`. */
  principal: string;
}

export type TriggerSpec =
  | { type: 'jenkins'; master: string; job: string; propertyFile?: string }
  | {
      type: 'docker';
      account: string;
      registry?: string;
      organization?: string;
      repository: string;
      tag?: string;
    }
  | {
      type: 'git';
      source: 'github' | 'gitlab' | 'bitbucket' | 'stash';
      project: string;
      slug: string;
      branch?: string;
    }
  | { type: 'webhook'; source: string; payloadConstraints?: Record<string, string> }
  | { type: 'pipeline'; application: string; pipeline: string; status?: string[] }
  | { type: 'cron'; cronExpression: string };

export interface NotificationSpec {
  type: 'slack' | 'email' | 'googlechat' | 'microsoftteams' | 'githubStatus';
  address: string;
  when?: Array<'pipeline.starting' | 'pipeline.complete' | 'pipeline.failed'>;
}

export interface SpinnakerSpec {
  application?: string;
  account: string;
  pipelineName?: string;
  stageServer: { url: string; auth?: SecretRef; meshAuth?: MeshAuth };
  runner?: StageRunner;
  /**
   * How webhook stages are written: `inline` (default: url, payload and polling fields in the pipeline JSON, no
   * secret header) or `preconfigured` (Orca's preconfigured webhook types `cloverCd<Action>` declared in
   * orca-local.yml by `clover-cd pipeline orca-config`, with the secret header; the pipeline holds only
   * `parameterValues`).
   */
  stages?: 'inline' | 'preconfigured';
  jenkins?: { master: string; job: string };
  /** image: default the published clover-cd image (contract/images.ts). */
  runJob?: { image?: string; namespace?: string; serviceAccount?: string };
  triggers?: TriggerSpec[];
  notifications?: NotificationSpec[];
}

export interface GithubSpec {
  repository: string; // owner/name
  context?: string;
  apiUrl?: string;
  token?: SecretRef;
}

/** A spec after loading: the parsed document plus where it came from. */
export interface LoadedSpec {
  spec: ReleaseSpec;
  file: string;
  dir: string;
  strategyKind: StrategyKind;
  /** Problems of the files the spec names, when the command loaded it with `files: 'optional'`. */
  warnings?: import('../util/errors.js').InputProblem[];
}
