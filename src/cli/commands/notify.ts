import type { Command } from 'commander';
import type { ReleaseSpec } from '../../spec/types.js';
import { InvalidInputError, type InputProblem } from '../../util/errors.js';
import { action, globalOptions } from '../context.js';
import { parseUrlFlag } from '../flags.js';
import { printResult } from '../output.js';

interface NotifyOptions {
  sha?: string;
  repo?: string;
  spec?: string;
  bundle?: string;
  outcome?: string;
  summary?: string;
  status: boolean;
  check: boolean;
  deployment?: string;
  environment: string;
  targetUrl?: string;
  context?: string;
  tokenEnv?: string;
  apiUrl?: string;
}

const OUTCOMES = ['pass', 'fail', 'inconclusive', 'error'] as const;
type Outcome = (typeof OUTCOMES)[number];
type RuleRow = { rule: string; outcome: string; observed: string; expected: string; reason: string };

/**
 * Every flag, the spec, the token and the bundle checked before anything is sent, and every problem reported
 * at once (exit 2): a wrong SHA, a missing bundle and a missing token are three fixes, not three runs.
 */
async function checkedInput(opts: NotifyOptions) {
  const problems: InputProblem[] = [];
  const take = (err: unknown, path: string) => {
    if (!(err instanceof InvalidInputError)) throw err;
    problems.push(
      ...(err.problems.length
        ? err.problems
        : [
            {
              path,
              message: err.message.startsWith(`${path} `) ? err.message.slice(path.length + 1) : err.message,
            },
          ]),
    );
  };
  let gh: ReleaseSpec['github'];
  if (opts.spec) {
    try {
      gh = (await import('../../spec/load.js')).loadSpec(opts.spec).spec.github;
    } catch (err) {
      take(err, '--spec');
    }
  }
  const repository = opts.repo ?? gh?.repository ?? '';
  const repoFlag = opts.repo !== undefined ? '--repo' : 'github.repository';
  if (!repository)
    problems.push({
      path: '--repo',
      message: 'which repository? expected owner/name (or --spec with a github.repository)',
    });
  else if (!/^[^/\s]+\/[^/\s]+$/.test(repository))
    problems.push({ path: repoFlag, message: `expected owner/name, got "${repository}"` });
  const sha = opts.sha ?? process.env.GIT_COMMIT ?? process.env.GITHUB_SHA ?? '';
  const shaFrom =
    opts.sha !== undefined ? '--sha' : process.env.GIT_COMMIT !== undefined ? '$GIT_COMMIT' : '$GITHUB_SHA';
  if (!sha)
    problems.push({
      path: '--sha',
      message: 'which commit? expected a 40-character commit SHA (or set GIT_COMMIT / GITHUB_SHA)',
    });
  else if (!/^[0-9a-f]{40}$/i.test(sha))
    problems.push({
      path: shaFrom,
      message: `expected a full 40-character hexadecimal commit SHA, got "${sha.slice(0, 80)}"`,
    });
  const tokenEnv = opts.tokenEnv ?? gh?.token?.env ?? 'GITHUB_TOKEN';
  const token = process.env[tokenEnv] ?? '';
  if (!token)
    problems.push({
      path: `$${tokenEnv}`,
      message: `no GitHub token: set ${tokenEnv}${opts.tokenEnv ? '' : ' (or name another variable with --token-env)'}`,
    });
  if (opts.deployment && !['promote', 'rollback'].includes(opts.deployment))
    problems.push({
      path: '--deployment',
      message: `expected promote or rollback, got "${opts.deployment}"`,
    });
  for (const [flag, value] of [
    ['--api-url', opts.apiUrl],
    ['--target-url', opts.targetUrl],
  ] as const) {
    try {
      if (value !== undefined) parseUrlFlag(flag, value);
    } catch (err) {
      take(err, flag);
    }
  }
  let outcome: Outcome = 'error';
  let summary = '';
  let rules: RuleRow[] = [];
  if (opts.bundle) {
    try {
      const { MB, readDocument } = await import('../../spec/input.js');
      const b = readDocument(opts.bundle, {
        maxBytes: 256 * MB,
        what: 'an evidence bundle written by clover-cd gate',
        json: true,
      }) as { verdict?: { outcome: Outcome; summary: string; results?: RuleRow[] } } | null;
      if (!b?.verdict || !OUTCOMES.includes(b.verdict.outcome))
        problems.push({
          file: opts.bundle,
          path: 'verdict',
          message: `expected {outcome: ${OUTCOMES.join('|')}, summary, results}: the bundle has no verdict`,
        });
      else {
        ({ outcome, summary } = b.verdict);
        rules = b.verdict.results ?? [];
      }
    } catch (err) {
      take(err, '--bundle');
    }
  } else if (!opts.outcome || !OUTCOMES.includes(opts.outcome as Outcome)) {
    problems.push({
      path: '--outcome',
      message: `give --bundle, or --outcome ${OUTCOMES.join('|')}${opts.outcome ? `; got "${opts.outcome}"` : ''}`,
    });
  } else {
    outcome = opts.outcome as Outcome;
    summary = opts.summary ?? `release ${outcome}`;
  }
  if (problems.length)
    throw new InvalidInputError(
      `notify github: ${problems.length} problem${problems.length > 1 ? 's' : ''}; nothing was sent to GitHub`,
      problems,
    );
  return { gh, outcome, summary, rules, repository, sha, token };
}

export function register(program: Command): void {
  const notify = program
    .command('notify')
    .description('tell other systems about a release: GitHub commit status, check run, deployment');
  notify
    .command('github')
    .description(
      'post the verdict as a commit status and/or check run; record promote/rollback as a GitHub deployment',
    )
    .option('--sha <sha>', 'commit to annotate (default $GIT_COMMIT or $GITHUB_SHA)')
    .option('--repo <owner/name>', 'repository (default: github.repository of --spec)')
    .option(
      '--spec <file>',
      'release spec: github.repository, github.context, github.apiUrl, github.token.env',
    )
    .option('--bundle <file>', 'evidence bundle whose verdict is posted (clover-cd gate writes it)')
    .option('--outcome <outcome>', `verdict when there is no bundle: ${OUTCOMES.join('|')}`)
    .option('--summary <text>', 'one-line summary when there is no bundle')
    .option('--no-status', 'do not post a commit status')
    .option('--check', 'also create a check run with every rule of the verdict', false)
    .option(
      '--deployment <kind>',
      'record a deployment: promote (status success) or rollback (status failure)',
    )
    .option('--environment <name>', 'deployment environment', 'production')
    .option('--target-url <url>', 'link shown with the status (default $BUILD_URL, the Jenkins build)')
    .option('--context <name>', 'status context (default github.context of --spec, else clover-cd/gate)')
    .option(
      '--token-env <name>',
      'environment variable with the token (default github.token.env of --spec, else GITHUB_TOKEN)',
    )
    .option('--api-url <url>', 'API root for GitHub Enterprise, e.g. https://github.example.com/api/v3')
    .addHelpText(
      'after',
      `
The token is read from the environment and never printed. Exit 4 when GitHub refuses the token (401/403) or
cannot see the repository (404); exit 2 when it rejects the request (422, e.g. an unknown SHA).

Examples:
  clover-cd notify github --spec release.yaml --sha $GIT_COMMIT --bundle .clover-cd/evidence/x.json --check
  clover-cd notify github --repo opnfv/clover --sha $GIT_COMMIT --outcome pass --summary "promoted" --deployment promote
`,
    )
    .action(
      action(async (opts: NotifyOptions, cmd: Command) => {
        const { createGithubClient, verdictOnGithub } = await import('../../services/github.js');
        const { gh, outcome, summary, rules, repository, sha, token } = await checkedInput(opts);
        const client = createGithubClient({ repository, token, apiUrl: opts.apiUrl ?? gh?.apiUrl });
        const { state, conclusion } = verdictOnGithub(outcome);
        const context = opts.context ?? gh?.context ?? 'clover-cd/gate';
        const targetUrl = opts.targetUrl ?? process.env.BUILD_URL;
        const out: Record<string, unknown> = { repository, sha, outcome };
        if (opts.status)
          out.status = {
            state,
            context,
            ...(await client.setCommitStatus(sha, { state, context, description: summary, targetUrl })),
          };
        if (opts.check) {
          const text = rules.map((r) =>
            `| ${r.rule} | ${r.outcome} | ${r.observed} | ${r.expected} | ${r.reason} |`.replace(/\n/g, ' '),
          );
          out.check = {
            conclusion,
            ...(await client.createCheckRun(sha, {
              name: context,
              conclusion,
              title: `${outcome.toUpperCase()}: ${summary}`,
              summary,
              text: text.length
                ? [
                    '| rule | outcome | observed | expected | reason |',
                    '|---|---|---|---|---|',
                    ...text,
                  ].join('\n')
                : undefined,
              detailsUrl: targetUrl,
            })),
          };
        }
        if (opts.deployment) {
          const dep = await client.createDeployment(sha, {
            environment: opts.environment,
            description: `clover-cd ${opts.deployment}: ${summary}`,
            payload: { outcome, action: opts.deployment },
          });
          const depState = opts.deployment === 'promote' ? 'success' : 'failure';
          const st = await client.createDeploymentStatus(dep.id, {
            state: depState,
            description: opts.deployment === 'promote' ? `promoted: ${summary}` : `rolled back: ${summary}`,
            logUrl: targetUrl,
          });
          out.deployment = { id: dep.id, environment: opts.environment, state: depState, statusId: st.id };
        }
        printResult(globalOptions(cmd).output, out, (d) =>
          [
            `${d.repository}@${String(d.sha).slice(0, 12)}: ${d.outcome}`,
            d.status
              ? `  commit status  ${(d.status as { state: string; context: string }).state} (${(d.status as { context: string }).context})`
              : '',
            d.check
              ? `  check run      ${(d.check as { conclusion: string; url: string }).conclusion} ${(d.check as { url: string }).url}`
              : '',
            d.deployment
              ? `  deployment     #${(d.deployment as { id: number }).id} ${(d.deployment as { environment: string }).environment}: ${(d.deployment as { state: string }).state}`
              : '',
          ]
            .filter(Boolean)
            .join('\n'),
        );
        return 0;
      }),
    );
}
