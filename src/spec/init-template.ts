/** The commented example written by `clover-cd spec init`. It must stay valid (a test checks it). */
import type { Mesh } from '../contract/index.js';

export const SPEC_TEMPLATE = `# clover-cd release spec: one file describes the service, how to release it, the load to drive
# through it and the gate that decides promotion. Validate with: clover-cd spec validate <file>
apiVersion: clover-cd/v1
kind: Release
metadata:
  name: http-lb-canary            # names the release (Spinnaker pipeline, annotations, reports)
application: sdc                  # Spinnaker application
service:
  name: http-lb                   # Kubernetes Service (and VirtualService host unless 'host' is set)
  namespace: default
  port: 9180
  versionLabel: version           # pod label that tells versions apart; DestinationRule subsets use it
  mesh: istio                     # the mesh whose routes carry the release (and names its telemetry)
  stable: v1                      # version serving today
  candidate: v2                   # version being released
  candidateImage: opnfv/clover-ns-nginx-lb:opnfv-7.0.0
  # candidateManifests: [k8s/http-lb-v2.yaml]   # or: manifests that deploy the candidate
strategy:
  # exactly one of canary / blueGreen / abTest; 'mirror' may be added to any of them
  canary:
    steps: [10, 25, 50]           # candidate weight per step (or stepWeight: 10 + maxWeight: 50)
    window: 60s                   # load + analysis time per step
    judgmentAt: [50]              # ask a person before going past these weights
    maxInconclusive: 2            # repeat an inconclusive step this often, then roll back
  # blueGreen: { previewWindow: 2m, judgment: true }
  # abTest:
  #   match:
  #     - headers: { user-agent: { regex: ".*chrome.*" } }
  #   window: 2m
  # mirror: { percentage: 100%, window: 30s }
load:
  # a JMeter plan in Clover's jmeter_testplan.yaml form, by path (relative to this file) or inline
  plan:
    load_spec: { num_threads: 5, loops: -1, ramp_time: 0, duration: 60 }
    url_list:
      - { name: url1, url: "http://proxy-access-control.default:9180", method: GET, user-agent: chrome }
  engine: auto                    # jmeter when installed, the builtin engine otherwise
  # engines: 4                    # distributed JMeter: the platform starts 4 jmeter-server engines per window
  # resources: { cpu: "2", memory: 2Gi }   # each engine's, on a cluster (deploy/clover-cd/overlays/load-engines)
gate:
  minSamples: 100                 # per version and window; fewer makes a rule inconclusive, never a pass
  metrics: { source: prometheus, url: "http://prometheus.istio-system:9090", scrapeInterval: 15s }
  traceSampling: 1%               # share of requests the tracer keeps (Istio's default); root spans are then an estimate
  # Load requests carry x-clover-cd-load; apply deploy/sdc/telemetry.yaml so Istio labels them (and routes).
  maxWindow: 5m                   # a window closes when the rules decide: a regression fails it early, a healthy canary passes at the step's window; at most this long
  # requestRate: 50/s             # the service's usual traffic: spec validate warns when a step cannot decide within maxWindow at it
  onInconclusive: fail            # still inconclusive after that and maxInconclusive more windows: fail (roll back) or hold (keep the weight)
  alpha: 1%                       # false-alarm budget: the chance the release rolls back a healthy candidate; each step's window
                                  # spends its part (1/steps), split over every statistical rule
                                  # (weighted Bonferroni; a rule's alphaWeight sets its part, its own alpha takes a fixed share)
  rules:
    # Each statistical rule fails as soon as its tolerance is exceeded beyond chance (its share of alpha) and
    # passes once a regression of its 'detect' size is ruled out (gate.beta, default 5%): the window closes at
    # the first of the two, or grows to maxWindow (then inconclusive).
    - conservation: { hops: [proxy-access-control, http-lb], tolerance: 0 }   # load's requests seen at each hop; all traffic within what was in flight
    - split: {}                                    # observed candidate share matches its weight
    - errorRate: { max: 5%, perRoute: true }       # a backstop: candidate 5xx share, overall and per route (a route passes below routeMax, 2 × max)
    - latency: { percentile: 95, max: 1s }         # a backstop: candidate p95
    - compareErrors: { perRoute: true, detect: 1.5%, routeDetect: 3% }   # candidate not worse than stable; +1.5 points (+3 on a route) never passes
    - compareLatency: { maxIncrease: 10%, detect: 25% }   # candidate median ≤ stable median × 1.1; × 1.25 never passes
    - tail: { percentiles: [95, 99], maxIncrease: 10%, detect: 50% }   # the slowest requests: p95/p99 ratios
    # any of errorRate / latency / compareErrors / compareLatency / tail can target one route: { route: /clover/api, ... }
spinnaker:
  account: k8s-sdc                # Kubernetes account in Spinnaker (Clouddriver)
  stageServer:                    # where the pipeline's webhook stages reach 'clover-cd serve'
    url: http://clover-cd.clover-system:8080
    auth: { env: CLOVER_CD_TOKEN } # bearer token, read from the environment; never written out
    # Inline webhook stages carry no secret: the server knows Orca by its mesh identity (serve
    # --trust-mesh-principal, deploy/clover-cd/overlays/mesh-auth). Or use 'stages: preconfigured'.
    meshAuth: { principal: "spiffe://cluster.local/ns/spinnaker/sa/spin-orca" }
  runner: webhook                 # webhook | jenkins | runJob
  triggers:
    # registry: the Docker registry account's address; Echo names the pushed image <registry>/<repository>
    - { type: docker, account: dockerhub, registry: index.docker.io, organization: opnfv, repository: opnfv/clover-ns-nginx-lb, tag: "^opnfv-.*$" }
github:
  repository: opnfv/clover        # commit statuses and deployments go here
  context: clover-cd/gate
`;

const MESH_LINE =
  '  mesh: istio                     # the mesh whose routes carry the release (and names its telemetry)\n';

/** The template for a mesh: on the Gateway API, the HTTPRoute and the Service of each version it routes to. */
export function specTemplate(mesh: Mesh = 'istio'): string {
  if (mesh === 'istio') return SPEC_TEMPLATE;
  return SPEC_TEMPLATE.replace(
    MESH_LINE,
    `  mesh: gateway-api               # the service's own HTTPRoute carries the release (gateway.networking.k8s.io/v1)
  httpRoute: http-lb              # the HTTPRoute; its rule to the stable Service gets the weights (default: name)
  backends:                       # one Service per version, as backendRefs name them (default <name>-<version>)
    stable: http-lb-v1
    candidate: http-lb-v2
`,
  );
}
