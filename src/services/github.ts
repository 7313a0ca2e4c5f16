import { Octokit } from '@octokit/rest';
import { InfrastructureError, InvalidInputError } from '../util/errors.js';
import { redact, registerSecret } from '../util/redact.js';
import { withRetry } from '../util/retry.js';

/**
 * GitHub REST adapter (octokit): commit statuses, check runs, deployments and deployment statuses.
 * The token is registered as a secret and never appears in messages. Transport errors and 5xx are
 * retried; 401 / 403 / 404 are infrastructure errors (exit 4) naming what to check; 422 is invalid input
 * (exit 2) with GitHub's own message (unknown SHA, bad state).
 */
export interface GithubOptions {
  /** owner/name */
  repository: string;
  token: string;
  /** API root, e.g. https://github.example.com/api/v3 for GitHub Enterprise (default https://api.github.com). */
  apiUrl?: string;
  timeoutMs?: number;
}

export type CommitState = 'success' | 'failure' | 'error' | 'pending';
export type CheckConclusion =
  'success' | 'failure' | 'neutral' | 'cancelled' | 'timed_out' | 'action_required' | 'skipped';
export type DeploymentState =
  'success' | 'failure' | 'error' | 'inactive' | 'in_progress' | 'queued' | 'pending';

export interface GithubClient {
  setCommitStatus(
    sha: string,
    s: { state: CommitState; context: string; description: string; targetUrl?: string },
  ): Promise<{ id: number; url: string }>;
  createCheckRun(
    sha: string,
    c: {
      name: string;
      conclusion: CheckConclusion;
      title: string;
      summary: string;
      text?: string;
      detailsUrl?: string;
    },
  ): Promise<{ id: number; url: string }>;
  createDeployment(
    ref: string,
    d: { environment: string; description: string; payload?: Record<string, unknown> },
  ): Promise<{ id: number; url: string }>;
  createDeploymentStatus(
    id: number,
    s: { state: DeploymentState; description: string; logUrl?: string; environmentUrl?: string },
  ): Promise<{ id: number; url: string }>;
}

/** GitHub limits a commit status description to 140 characters. */
export const clip = (text: string, max = 140) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

export function createGithubClient(opts: GithubOptions): GithubClient {
  const m = /^([^/\s]+)\/([^/\s]+)$/.exec(opts.repository);
  if (!m)
    throw new InvalidInputError(`GitHub repository must be "owner/name", got "${opts.repository}"`, [
      { path: 'github.repository', message: 'expected owner/name' },
    ]);
  const [owner, repo] = [m[1], m[2]];
  registerSecret(opts.token);
  const baseUrl = (opts.apiUrl ?? 'https://api.github.com').replace(/\/+$/, '');
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const octokit = new Octokit({
    auth: opts.token,
    baseUrl,
    userAgent: 'clover-cd',
    request: {
      fetch: (url: string, init: RequestInit) =>
        fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
    },
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  });

  const call = async <T>(what: string, fn: () => Promise<{ data: T }>): Promise<T> => {
    try {
      const r = await withRetry(fn, {
        attempts: 3,
        baseDelayMs: 300,
        retryable: (err) => {
          const status = (err as { status?: number }).status;
          return status === undefined || status >= 500 || status === 429;
        },
      });
      return r.data;
    } catch (err) {
      const status = (err as { status?: number }).status;
      const message = redact(
        ((err as { response?: { data?: { message?: string } } }).response?.data?.message ??
          (err as Error).message) ||
          'request failed',
      );
      const target = `${baseUrl}/repos/${owner}/${repo} (${what})`;
      if (status === 422)
        throw new InvalidInputError(`GitHub refused ${what}: ${message}`, [{ path: what, message }]);
      if (status === 401)
        throw new InfrastructureError(
          'GitHub',
          target,
          `401 ${message}`,
          'that the token in the environment is valid and not expired',
        );
      if (status === 403)
        throw new InfrastructureError(
          'GitHub',
          target,
          `403 ${message}`,
          'that the token may write statuses/checks/deployments on this repository (scopes repo:status, checks, deployments)',
        );
      if (status === 404)
        throw new InfrastructureError(
          'GitHub',
          target,
          `404 ${message}`,
          `that ${owner}/${repo} exists and the token can see it (GitHub answers 404 for private repositories it may not read)`,
        );
      throw new InfrastructureError(
        'GitHub',
        target,
        status ? `${status} ${message}` : message,
        `that ${baseUrl} is reachable`,
      );
    }
  };

  return {
    async setCommitStatus(sha, s) {
      const d = await call(`commit status for ${sha}`, () =>
        octokit.rest.repos.createCommitStatus({
          owner,
          repo,
          sha,
          state: s.state,
          context: s.context,
          description: clip(s.description),
          target_url: s.targetUrl,
        }),
      );
      return { id: d.id, url: d.url };
    },
    async createCheckRun(sha, c) {
      const d = await call(`check run for ${sha}`, () =>
        octokit.rest.checks.create({
          owner,
          repo,
          head_sha: sha,
          name: c.name,
          status: 'completed',
          conclusion: c.conclusion,
          completed_at: new Date().toISOString(),
          details_url: c.detailsUrl,
          output: {
            title: clip(c.title, 255),
            summary: clip(c.summary, 65_535),
            text: c.text ? clip(c.text, 65_535) : undefined,
          },
        }),
      );
      return { id: d.id, url: d.html_url ?? d.url };
    },
    async createDeployment(ref, dep) {
      const d = (await call<unknown>(`deployment of ${ref}`, () =>
        // required_contexts [] : the release gate already decided; GitHub must not re-check statuses.
        octokit.rest.repos.createDeployment({
          owner,
          repo,
          ref,
          environment: dep.environment,
          description: clip(dep.description),
          auto_merge: false,
          required_contexts: [],
          payload: JSON.stringify(dep.payload ?? {}),
        }),
      )) as { id?: number; url?: string; message?: string };
      // 202 carries {message} instead of a deployment (an auto-merge happened first).
      if (typeof d.id !== 'number')
        throw new InfrastructureError(
          'GitHub',
          `${baseUrl}/repos/${owner}/${repo}/deployments`,
          `no deployment created: ${redact(String(d.message))}`,
        );
      return { id: d.id, url: d.url ?? '' };
    },
    async createDeploymentStatus(id, s) {
      const d = await call(`deployment ${id} status`, () =>
        octokit.rest.repos.createDeploymentStatus({
          owner,
          repo,
          deployment_id: id,
          state: s.state,
          description: clip(s.description),
          log_url: s.logUrl,
          environment_url: s.environmentUrl,
        }),
      );
      return { id: d.id, url: d.url };
    },
  };
}

/** How a release verdict shows on GitHub. Inconclusive is not a pass: nothing was promoted. */
export function verdictOnGithub(outcome: 'pass' | 'fail' | 'inconclusive' | 'error'): {
  state: CommitState;
  conclusion: CheckConclusion;
} {
  switch (outcome) {
    case 'pass':
      return { state: 'success', conclusion: 'success' };
    case 'fail':
      return { state: 'failure', conclusion: 'failure' };
    case 'inconclusive':
      return { state: 'failure', conclusion: 'neutral' };
    default:
      return { state: 'error', conclusion: 'failure' };
  }
}
