import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, runCli } from '../helpers/cli.js';
import { KUBECTL, kustomize, kustomizeFolders, readmeGrants } from '../helpers/deploy.js';

/**
 * deploy/ on a real kube-apiserver (../shared/tools/real-apiserver: 1.20 + etcd + Istio CRDs, RBAC on, no
 * controllers). Opt-in: `npm run test:cluster` after `bash up.sh`; skipped, saying why, when it is not up.
 * kubectl: $KUBECTL, else `kubectl` on PATH.
 */
const RUN = join(process.env.REALK8S_DIR ?? '/tmp/realk8s', 'run');
const ADMIN = join(RUN, 'admin.kubeconfig');
const LIMITED = join(RUN, 'limited.kubeconfig');
const up = existsSync(ADMIN);
if (!up)
  console.warn(
    `test:cluster skipped: ${ADMIN} does not exist (start the API server: bash ../shared/tools/real-apiserver/up.sh)`,
  );

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
function kubectl(args: string[], opts: { input?: string; kubeconfig?: string } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      KUBECTL,
      [`--kubeconfig=${opts.kubeconfig ?? ADMIN}`, '--request-timeout=20s', ...args],
      { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}
/** kubectl must succeed; its stderr may only hold warnings (version skew, last-applied annotations). */
async function ok(args: string[], opts: { input?: string } = {}): Promise<string> {
  const r = await kubectl(args, opts);
  const errors = r.stderr.split('\n').filter((l) => !notice(l));
  expect({ args: args.join(' '), code: r.code, errors }).toEqual({
    args: args.join(' '),
    code: 0,
    errors: [],
  });
  return r.stdout;
}

const vsWeights = async () => {
  const vs = JSON.parse(
    await ok(['-n', 'default', 'get', 'virtualservices.networking.istio.io', 'http-lb', '-o', 'json']),
  ) as { spec: { http: Array<{ route: Array<{ destination: { subset: string }; weight?: number }> }> } };
  return Object.fromEntries(vs.spec.http.at(-1)!.route.map((r) => [r.destination.subset, r.weight ?? 0]));
};

const FOLDERS = kustomizeFolders();
/** Granted to every authenticated user by the API server's bootstrap roles (system:basic-user): asking what one may do. */
const SELF_REVIEWS = [
  'selfsubjectaccessreviews.authorization.k8s.io',
  'selfsubjectrulesreviews.authorization.k8s.io',
];
/** `kubectl auth can-i --list`: "<verb> <resource>" per verb of each resource rule (non-resource URLs left out). */
function canIList(table: string): string[] {
  const [header, ...lines] = table.split('\n').filter((l) => l.trim());
  const urls = header.indexOf('Non-Resource URLs');
  const verbs = header.indexOf('Verbs');
  return lines.flatMap((l) => {
    const resource = l.slice(0, urls).trim();
    if (!resource || SELF_REVIEWS.includes(resource)) return [];
    return l
      .slice(verbs)
      .replace(/[[\]]/g, '')
      .trim()
      .split(/\s+/)
      .map((v) => `${v} ${resource}`);
  });
}
/** A kubectl error line that is only a notice (version skew, last-applied annotations, deprecated kustomize fields). */
const notice = (l: string) => !l.trim() || /^(# )?Warning:|WARNING:|version difference/.test(l);

(up ? describe : describe.skip)('deploy/ on a real API server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'clover-cluster-'));
  const saKubeconfig = join(dir, 'clover-cd-sa.kubeconfig');
  let apiVersions = new Set<string>();
  let serve: ChildProcess | undefined;

  beforeAll(async () => {
    apiVersions = new Set((await ok(['api-versions'])).split('\n').filter(Boolean));
    // Spinnaker's namespace is Spinnaker's (its install creates it): the spinnaker-namespace overlay needs it.
    await ok(['apply', '-f', '-'], {
      input: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'spinnaker' } }),
    });
  });

  afterAll(() => {
    serve?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('kubectl apply -f deploy/sdc/: server dry run, then for real', async () => {
    expect(await ok(['apply', '-f', 'deploy/sdc/', '--dry-run=server'])).toMatch(/\(server dry run\)/);
    expect(await ok(['apply', '-f', 'deploy/sdc/'])).not.toMatch(/dry run/);
  });

  it.each(FOLDERS)('kubectl apply -k %s: one command, server dry run then for real', async (folder) => {
    const docs = kustomize(folder);
    const unserved = [...new Set(docs.map((d) => d.apiVersion))].filter((v) => !apiVersions.has(v));
    if (unserved.length) {
      // Kubernetes 1.20 has no policy/v1: the kube-1.20 overlay stands in for these builds (README.md).
      const r = await kubectl(['apply', '-k', folder, '--dry-run=server']);
      expect({ code: r.code, unserved }).toEqual({ code: 1, unserved: ['policy/v1'] });
      expect(r.stderr).toMatch(/no matches for kind "PodDisruptionBudget" in version "policy\/v1"/);
      expect(FOLDERS).toContain('deploy/clover-cd/overlays/kube-1.20');
      return;
    }
    // A dry run creates nothing, so objects in a namespace the same build creates cannot be checked before
    // that namespace exists: on an empty cluster those (and only those) say the namespace is not found.
    const created = docs.filter((d) => d.kind === 'Namespace').map((d) => d.metadata.name);
    const absent = new Set<string>();
    for (const ns of created) if ((await kubectl(['get', 'namespace', ns])).code !== 0) absent.add(ns);
    const dry = await kubectl(['apply', '-k', folder, '--dry-run=server']);
    const errors = dry.stderr
      .split('\n')
      .filter((l) => !notice(l) && ![...absent].some((ns) => l.includes(`namespaces "${ns}" not found`)));
    expect(errors).toEqual([]);
    if (!absent.size) expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/\(server dry run\)/);
    const real = await ok(['apply', '-k', folder]);
    expect(real).not.toMatch(/dry run/);
    expect(real.trim().split('\n')).toHaveLength(docs.length);
    expect(await ok(['apply', '-k', folder, '--dry-run=server'])).toMatch(/\(server dry run\)/);
  });

  it('each service account may do exactly what its README lists, where it lists it, and nothing else', async () => {
    const rows = readmeGrants();
    const accounts = [...new Set(rows.map((r) => r.account))];
    expect(accounts.length).toBeGreaterThanOrEqual(4);
    const as = (account: string) => {
      const [ns, name] = account.split(':');
      // The groups a token of the account carries, so that grants to them count too.
      return [
        `--as=system:serviceaccount:${ns}:${name}`,
        '--as-group=system:serviceaccounts',
        `--as-group=system:serviceaccounts:${ns}`,
        '--as-group=system:authenticated',
      ];
    };
    const resourceOf = (r: { group: string; resource: string }) =>
      r.group ? `${r.resource}.${r.group}` : r.resource;
    // `can-i get pods/log` would ask about the pod named "log": a subresource is its own flag.
    const canIArgs = (r: { group: string; resource: string }) => {
      const [resource, sub] = resourceOf(r).split('/');
      return sub ? [resource, `--subresource=${sub}`] : [resource];
    };
    for (const account of accounts) {
      const own = rows.filter((r) => r.account === account);
      // Every listed verb, asked one by one.
      for (const r of own)
        for (const verb of r.verbs)
          expect(
            `${account} ${verb} ${resourceOf(r)} -n ${r.namespace}: ${(await kubectl(['auth', 'can-i', verb, ...canIArgs(r), '-n', r.namespace, ...as(account)])).stdout.trim()}`,
          ).toMatch(/: yes$/);
      // Nothing else: all the account may do in each namespace (`auth can-i --list`), against its README rows.
      for (const namespace of [
        ...new Set([...own.map((r) => r.namespace), account.split(':')[0], 'kube-system']),
      ]) {
        const granted = canIList(await ok(['auth', 'can-i', '--list', '-n', namespace, ...as(account)]));
        const listed = own
          .filter((r) => r.namespace === namespace)
          .flatMap((r) => r.verbs.map((v) => `${v} ${resourceOf(r)}`));
        expect({ account, namespace, granted: granted.sort() }).toEqual({
          account,
          namespace,
          granted: listed.sort(),
        });
      }
    }
  });

  it('with its token, `traffic set --platform kubernetes` shifts the weights; a user without RBAC gets exit 4 and why', async () => {
    await ok(['apply', '-f', 'deploy/sdc/istio.yaml']); // weights back to the manifest's
    expect(await vsWeights()).toEqual({ v1: 100, v2: 0 });
    // No controllers run here: report the candidate's rollout as a controller would, or nothing may shift.
    const generation = JSON.parse(
      await ok(['-n', 'default', 'get', 'deployment', 'http-lb-v2', '-o', 'json']),
    ).metadata.generation as number;
    await ok([
      '-n',
      'default',
      'patch',
      'deployment',
      'http-lb-v2',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({
        status: {
          observedGeneration: generation,
          replicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          availableReplicas: 1,
        },
      }),
    ]);
    // 1.20 without kube-controller-manager never fills a token Secret: ask the TokenRequest API instead.
    const tr = JSON.parse(
      await ok(
        ['create', '--raw', '/api/v1/namespaces/clover-system/serviceaccounts/clover-cd/token', '-f', '-'],
        {
          input: JSON.stringify({
            apiVersion: 'authentication.k8s.io/v1',
            kind: 'TokenRequest',
            spec: { expirationSeconds: 600 },
          }),
        },
      ),
    ) as { status: { token: string } };
    const admin = readFileSync(ADMIN, 'utf8');
    const server = /server: (\S+)/.exec(admin)![1];
    const ca = /certificate-authority: (\S+)/.exec(admin)![1];
    writeFileSync(
      saKubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'real', cluster: { server, 'certificate-authority': ca } }],
        users: [{ name: 'clover-cd', user: { token: tr.status.token } }],
        contexts: [
          { name: 'clover-cd', context: { cluster: 'real', user: 'clover-cd', namespace: 'default' } },
        ],
        'current-context': 'clover-cd',
      }),
    );
    const r = await runCli([
      'traffic',
      'set',
      'examples/sdc-canary.yaml',
      '--platform',
      'kubernetes',
      '--kubeconfig',
      saKubeconfig,
      '--weight',
      '10',
    ]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('v2 now gets 10%');
    expect(r.code).toBe(0);
    expect(await vsWeights()).toEqual({ v1: 90, v2: 10 });

    const denied = await runCli([
      'traffic',
      'set',
      'examples/sdc-canary.yaml',
      '--platform',
      'kubernetes',
      '--kubeconfig',
      LIMITED,
      '--weight',
      '50',
    ]);
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain('HTTP 403');
    // The first thing the engine reads is the candidate's readiness (then the VirtualService): either 403 says why.
    expect(denied.stderr).toMatch(
      /cannot get resource "(deployments|virtualservices)" in API group "(apps|networking.istio.io)" in the namespace "default"/,
    );
    expect(denied.stderr).toContain('(RBAC)');
    expect(await vsWeights()).toEqual({ v1: 90, v2: 10 });
  });

  it('`serve --platform kubernetes` with the service account token shifts weights for a webhook stage', async () => {
    const yaml = await import('js-yaml');
    const spec = yaml.load(readFileSync(join(REPO, 'examples', 'sdc-canary.yaml'), 'utf8')) as Record<
      string,
      unknown
    >;
    // The request carries everything the job needs: the server reads no file a request names.
    spec.load = {
      plan: yaml.load(readFileSync(join(REPO, 'examples', 'sdc-load.yaml'), 'utf8')),
      engine: 'builtin',
    };
    serve = spawn(
      process.execPath,
      [
        join(REPO, 'bin', 'clover-cd.js'),
        'serve',
        '--port',
        '0',
        '--host',
        '127.0.0.1',
        '--platform',
        'kubernetes',
        '--kubeconfig',
        saKubeconfig,
      ],
      {
        cwd: dir,
        env: { ...process.env, NODE_OPTIONS: '', CLOVER_CD_TOKEN: 'cluster-test-token' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    serve.stderr!.on('data', (d) => (err += d));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start within 60 s: ${err}`)), 60_000);
      serve!.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/\S+?)\s/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      serve!.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    const headers = { authorization: 'Bearer cluster-test-token', 'content-type': 'application/json' };
    /** One webhook stage as Orca runs it: start the job, poll its status until it is final. */
    const stage = async (action: string, body: Record<string, unknown>) => {
      const started = await fetch(`${url}/api/v1/releases/http-lb-canary/${action}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ spec, ...body }),
        signal: AbortSignal.timeout(10_000),
      });
      const answer = (await started.json()) as { id: string; error?: string };
      expect({ status: started.status, error: answer.error }).toEqual({ status: 202, error: undefined });
      let job: { status: string; progress?: string } = { status: 'RUNNING' };
      for (const deadline = Date.now() + 60_000; job.status === 'RUNNING' && Date.now() < deadline;) {
        job = (await (
          await fetch(`${url}/api/v1/jobs/${answer.id}`, { headers, signal: AbortSignal.timeout(10_000) })
        ).json()) as { status: string };
        if (job.status === 'RUNNING') await new Promise((r) => setTimeout(r, 200));
      }
      return job;
    };
    const execution = { id: 'cluster-test-execution', pipeline: 'http-lb-canary' };
    // Prepare (routing objects, the candidate ready, the release recorded), then the plan's second step.
    expect(await stage('deploy', { execution })).toMatchObject({ status: 'SUCCEEDED' });
    expect(await stage('traffic', { step: 1, execution })).toMatchObject({ status: 'SUCCEEDED' });
    expect(await vsWeights()).toEqual({ v1: 90, v2: 10 });
    // Step 2 before step 1 was analysed is refused, naming where the release stands; nothing moves.
    const early = await stage('traffic', { step: 2, execution });
    expect(early).toMatchObject({ status: 'ERROR' });
    expect(early.progress).toMatch(/cannot run now: release http-lb-canary is progressing at step 1 \(10%\)/);
    expect(await vsWeights()).toEqual({ v1: 90, v2: 10 });
  });
});
