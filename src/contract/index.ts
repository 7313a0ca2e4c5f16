/**
 * The contract every host of a release shares, defined once: verdict outcomes, the stage actions, the
 * stage server's job statuses, the exit codes and the mappings between them, and the webhook status fields
 * Orca polls. The CLI, the stage server, `clover-cd stage`, the local pipeline runner and the rendered
 * pipelines all read these; none writes its own table.
 */
import { ExitCode } from '../util/errors.js';

export { ExitCode } from '../util/errors.js';

/** What a gate analysis can conclude. */
export const VERDICT_OUTCOMES = ['pass', 'fail', 'inconclusive', 'error'] as const;
export type Outcome = (typeof VERDICT_OUTCOMES)[number];

/** The release actions a pipeline schedules (stage server routes, `clover-cd stage <action>`, stage types). */
export const STAGE_ACTIONS = ['deploy', 'traffic', 'load', 'gate', 'promote', 'rollback'] as const;
export type StageAction = (typeof STAGE_ACTIONS)[number];

/** One line per action for help texts and Deck's stage picker. */
export const ACTION_DESCRIPTIONS: Record<StageAction, string> = {
  deploy: 'prepare the release: routing objects, wait until the candidate is ready, record the release',
  traffic: "shift traffic to a plan step's target (weight, preview, match or mirror)",
  load: "run the spec's load for a step's analysis window",
  gate: 'judge the window (evidence, observed split, verdict) and record the verdict; inconclusive windows are analysed again up to maxInconclusive',
  promote: 'send 100% to the candidate once the plan allows it',
  rollback: '100% back to stable, verified on observed traffic',
};

/** Job statuses of the stage server: exactly the words the rendered webhook stages list for Orca. */
export const JOB_STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'INCONCLUSIVE', 'ERROR', 'CANCELED'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export type FinalStatus = Exclude<JobStatus, 'RUNNING'>;

const EXIT_BY_OUTCOME: Record<Outcome, number> = {
  pass: ExitCode.ok,
  fail: ExitCode.failed,
  inconclusive: ExitCode.inconclusive,
  error: ExitCode.infrastructure,
};
const STATUS_BY_EXIT: Record<number, FinalStatus> = {
  [ExitCode.ok]: 'SUCCEEDED',
  [ExitCode.failed]: 'FAILED',
  [ExitCode.inconclusive]: 'INCONCLUSIVE',
  [ExitCode.interrupted]: 'CANCELED',
};
const EXIT_BY_STATUS: Record<FinalStatus, number> = {
  SUCCEEDED: ExitCode.ok,
  FAILED: ExitCode.failed,
  INCONCLUSIVE: ExitCode.inconclusive,
  ERROR: ExitCode.infrastructure,
  CANCELED: ExitCode.interrupted,
};

/** pass 0, fail 1, inconclusive 3, error 4. */
export const exitCodeForOutcome = (o: Outcome): number => EXIT_BY_OUTCOME[o] ?? ExitCode.infrastructure;
/** The job status Orca reads for a command's exit code (2 and 4 are ERROR). */
export const statusForExitCode = (code: number): FinalStatus => STATUS_BY_EXIT[code] ?? 'ERROR';
/** The exit code `clover-cd stage` returns for a job status (unknown words are errors). */
export const exitCodeForStatus = (status: string): number =>
  EXIT_BY_STATUS[status as FinalStatus] ?? ExitCode.infrastructure;

/**
 * How Orca's webhook stage follows a job of the stage server: the start answer carries the status URL, the
 * status body its status and progress, and these are its status words.
 */
export const STAGE_SERVER_POLLING = {
  waitForCompletion: true,
  statusUrlResolution: 'webhookResponse',
  statusUrlJsonPath: '$.statusUrl',
  statusJsonPath: '$.status',
  progressJsonPath: '$.progress',
  successStatuses: 'SUCCEEDED',
  terminalStatuses: 'FAILED,INCONCLUSIVE,ERROR',
  canceledStatuses: 'CANCELED',
} as const;

/**
 * `release run` without an answer at a judgment stops with exit 3, the code of "inconclusive" (nothing promoted
 * either way). What tells "waits for approval" apart is its `--properties` output: CLOVER_CD_PHASE is
 * `awaitingJudgment` and CLOVER_CD_STEP the 1-based step waiting; `release run --approve <step>` approves that
 * step once and goes on. Any other exit-3 run has another phase (e.g. rolledBack with cause inconclusive).
 */
export const PHASE_PROPERTY = 'CLOVER_CD_PHASE';
export const STEP_PROPERTY = 'CLOVER_CD_STEP';
export const AWAITING_JUDGMENT = 'awaitingJudgment';

/**
 * The meshes clover-cd moves traffic on (`service.mesh`) and the metrics backends it reads
 * (`gate.metrics.source`): the names the release spec and the evidence bundle accept. Each name has exactly one
 * registration — its router and telemetry in `routers/index.ts`, its provider in `metrics/index.ts` — typed by
 * these lists, so a name without a registration (or the reverse) does not compile. The lists sit here because
 * the spec's schema, below both registries, is built from them.
 */
export const MESHES = ['istio', 'gateway-api'] as const;
export type Mesh = (typeof MESHES)[number];
export const DEFAULT_MESH: Mesh = 'istio';
export const METRICS_SOURCES = ['prometheus', 'scrape'] as const;
export type MetricsSource = (typeof METRICS_SOURCES)[number];
