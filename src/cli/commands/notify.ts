import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidInputError } from '../../util/errors.js';
import { action, globalOptions } from '../context.js';
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

export function register(program: Command): void {
  const notify = program.command('notify').description('tell other systems about a release: GitHub commit status, check run, deployment');
  notify
    .command('github')
    .description('post the verdict as a commit status and/or check run; record promote/rollback as a GitHub deployment')
    .option('--sha <sha>', 'commit to annotate (default $GIT_COMMIT or $GITHUB_SHA)')
    .option('--repo <owner/name>', 'repository (default: github.repository of --spec)')
    .option('--spec <file>', 'release spec: github.repository, github.context, github.apiUrl, github.token.env')
    .option('--bundle <file>', 'evidence bundle whose verdict is posted (clover-cd gate writes it)')
    .option('--outcome <outcome>', `verdict when there is no bundle: ${OUTCOMES.join('|')}`)
    .option('--summary <text>', 'one-line summary when there is no bundle')
    .option('--no-status', 'do not post a commit status')
    .option('--check', 'also create a check run with every rule of the verdict', false)
    .option('--deployment <kind>', 'record a deployment: promote (status success) or rollback (status failure)')
    .option('--environment <name>', 'deployment environment', 'production')
    .option('--target-url <url>', 'link shown with the status (default $BUILD_URL, the Jenkins build)')
    .option('--context <name>', 'status context (default github.context of --spec, else clover-cd/gate)')
    .option('--token-env <name>', 'environment variable with the token (default github.token.env of --spec, else GITHUB_TOKEN)')
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
        const gh = opts.spec ? (await import('../../spec/load.js')).loadSpec(opts.spec).spec.github : undefined;
        const repository = opts.repo ?? gh?.repository;
        if (!repository) throw new InvalidInputError('which repository? pass --repo owner/name or --spec with a github.repository');
        const sha = opts.sha ?? process.env.GIT_COMMIT ?? process.env.GITHUB_SHA;
        if (!sha) throw new InvalidInputError('which commit? pass --sha (or set GIT_COMMIT / GITHUB_SHA)');
        const tokenEnv = opts.tokenEnv ?? gh?.token?.env ?? 'GITHUB_TOKEN';
        const token = process.env[tokenEnv];
        if (!token) throw new InvalidInputError(`no GitHub token: set ${tokenEnv}`);
        if (opts.deployment && !['promote', 'rollback'].includes(opts.deployment)) throw new InvalidInputError(`--deployment must be promote or rollback, got "${opts.deployment}"`);

        let outcome: Outcome;
        let summary: string;
        let rules: Array<{ rule: string; outcome: string; observed: string; expected: string; reason: string }> = [];
        if (opts.bundle) {
          let b: { release?: string; verdict?: { outcome: Outcome; summary: string; results?: typeof rules } };
          try {
            b = JSON.parse(readFileSync(opts.bundle, 'utf8'));
          } catch (err) {
            throw new InvalidInputError(`${opts.bundle}: not a readable evidence bundle: ${(err as Error).message}`);
          }
          if (!b.verdict || !OUTCOMES.includes(b.verdict.outcome)) throw new InvalidInputError(`${opts.bundle}: has no verdict`, [{ file: opts.bundle, path: 'verdict', message: 'expected {outcome, summary, results}' }]);
          ({ outcome, summary } = b.verdict);
          rules = b.verdict.results ?? [];
        } else {
          if (!opts.outcome || !OUTCOMES.includes(opts.outcome as Outcome)) throw new InvalidInputError(`pass --bundle, or --outcome ${OUTCOMES.join('|')}`);
          outcome = opts.outcome as Outcome;
          summary = opts.summary ?? `release ${outcome}`;
        }
        const client = createGithubClient({ repository, token, apiUrl: opts.apiUrl ?? gh?.apiUrl });
        const { state, conclusion } = verdictOnGithub(outcome);
        const context = opts.context ?? gh?.context ?? 'clover-cd/gate';
        const targetUrl = opts.targetUrl ?? process.env.BUILD_URL;
        const out: Record<string, unknown> = { repository, sha, outcome };
        if (opts.status) out.status = { state, context, ...(await client.setCommitStatus(sha, { state, context, description: summary, targetUrl })) };
        if (opts.check) {
          const text = rules.map((r) => `| ${r.rule} | ${r.outcome} | ${r.observed} | ${r.expected} | ${r.reason} |`.replace(/\n/g, ' '));
          out.check = {
            conclusion,
            ...(await client.createCheckRun(sha, {
              name: context,
              conclusion,
              title: `${outcome.toUpperCase()}: ${summary}`,
              summary,
              text: text.length ? ['| rule | outcome | observed | expected | reason |', '|---|---|---|---|---|', ...text].join('\n') : undefined,
              detailsUrl: targetUrl,
            })),
          };
        }
        if (opts.deployment) {
          const dep = await client.createDeployment(sha, { environment: opts.environment, description: `clover-cd ${opts.deployment}: ${summary}`, payload: { outcome, action: opts.deployment } });
          const depState = opts.deployment === 'promote' ? 'success' : 'failure';
          const st = await client.createDeploymentStatus(dep.id, { state: depState, description: opts.deployment === 'promote' ? `promoted: ${summary}` : `rolled back: ${summary}`, logUrl: targetUrl });
          out.deployment = { id: dep.id, environment: opts.environment, state: depState, statusId: st.id };
        }
        printResult(globalOptions(cmd).output, out, (d) =>
          [
            `${d.repository}@${String(d.sha).slice(0, 12)}: ${d.outcome}`,
            d.status ? `  commit status  ${(d.status as { state: string; context: string }).state} (${(d.status as { context: string }).context})` : '',
            d.check ? `  check run      ${(d.check as { conclusion: string; url: string }).conclusion} ${(d.check as { url: string }).url}` : '',
            d.deployment ? `  deployment     #${(d.deployment as { id: number }).id} ${(d.deployment as { environment: string }).environment}: ${(d.deployment as { state: string }).state}` : '',
          ]
            .filter(Boolean)
            .join('\n'),
        );
        return 0;
      }),
    );
}
