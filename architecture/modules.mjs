// The one statement of the module direction. ESLint builds its import rules from this table,
// `node scripts/architecture.mjs --write` writes ARCHITECTURE.md's module table, the README's chain and every
// module README's import line from it, and test/architecture.test.ts fails when any of them disagree.
//
// Each module lists the modules it may import; anything else is an error. The layers of the chain are
// derived from these lists (a module sits above everything it may import).

/** @type {{ name: string, owns: string, imports: string[] }[]} */
export const MODULES = [
  {
    name: 'cli',
    owns: 'the `clover-cd` command: parsing, printers, exit codes; calls the other modules by their public entries',
    imports: [
      'server',
      'stages',
      'reports',
      'routers',
      'canary',
      'jmeter',
      'validators',
      'pipelines',
      'metrics',
      'services',
      'sandbox',
      'clovisor',
      'visibility',
      'spec',
      'contract',
      'util',
    ],
  },
  {
    name: 'server',
    owns: 'the HTTP service (`serve`): the job API Spinnaker webhooks call, job stores (memory, Redis), auth, the dashboard, Clover-compatible routes, the local pipeline run against it; each job is one stage action',
    imports: [
      'stages',
      'reports',
      'canary',
      'jmeter',
      'validators',
      'services',
      'visibility',
      'spec',
      'contract',
      'util',
    ],
  },
  {
    name: 'stages',
    owns: "the release engine (engine/), its action registry (actions.ts), and the hosts' thin edges: release run, `clover-cd stage`, the local pipeline host, the demo",
    imports: [
      'reports',
      'routers',
      'canary',
      'jmeter',
      'validators',
      'pipelines',
      'metrics',
      'services',
      'sandbox',
      'spec',
      'contract',
      'util',
    ],
  },
  {
    name: 'reports',
    owns: 'self-contained HTML reports with charts: the gate report beside every evidence bundle, the load report',
    imports: ['validators', 'jmeter', 'spec', 'util'],
  },
  {
    name: 'routers',
    owns: 'the TrafficRouter port, the mesh registry (router + telemetry per mesh), the shared conflict-retried write of routes + state and the split check; one folder per mesh (istio/) with its objects and pure route patches',
    imports: ['validators', 'canary', 'metrics', 'services', 'spec', 'contract', 'util'],
  },
  {
    name: 'validators',
    owns: 'evidence collection, rules, verdicts, sample-size planning, evidence bundles',
    imports: ['metrics', 'clovisor', 'services', 'spec', 'contract', 'util'],
  },
  {
    name: 'pipelines',
    owns: 'spec → Spinnaker pipeline JSON, pipeline validation, the local Orca runner',
    imports: ['canary', 'services', 'spec', 'contract', 'util'],
  },
  {
    name: 'metrics',
    owns: 'the MetricsProvider port (Prometheus, direct scrape) and the mesh telemetry descriptions',
    imports: ['services', 'spec', 'contract', 'util'],
  },
  {
    name: 'canary',
    owns: 'release strategies as a pure state machine; the plan of traffic steps',
    imports: ['spec', 'contract', 'util'],
  },
  {
    name: 'jmeter',
    owns: 'JMeter plans, runners, JTL parsing, statistics, criteria',
    imports: ['spec', 'contract', 'util'],
  },
  {
    name: 'sandbox',
    owns: 'the local SDC mesh with Istio semantics, telemetry and a Jaeger API',
    imports: ['services', 'spec', 'contract', 'util'],
  },
  {
    name: 'clovisor',
    owns: 'the eBPF L3/L4 session tracer',
    imports: ['services', 'spec', 'contract', 'util'],
  },
  {
    name: 'visibility',
    owns: "continuous visibility: traces and metrics into Clover's Redis keys",
    imports: ['services', 'spec', 'contract', 'util'],
  },
  {
    name: 'services',
    owns: 'adapters to outside systems (Kubernetes, Istio, Prometheus, Jaeger, Redis, Spinnaker, GitHub)',
    imports: ['util'],
  },
  {
    name: 'spec',
    owns: 'the release spec: types, schema, loading, validation',
    imports: ['contract', 'util'],
  },
  {
    name: 'contract',
    owns: 'outcomes, stage actions, job statuses, exit codes, webhook status fields, image names: defined once',
    imports: ['util'],
  },
  {
    name: 'util',
    owns: 'errors, retries, bounds, units, redaction',
    imports: [],
  },
];
