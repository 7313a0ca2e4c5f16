import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as yaml from 'js-yaml';
import { defaultImage } from '../src/contract/images.js';
import { REPO } from './helpers/cli.js';
import {
  buildProblems,
  DEPLOY,
  grantKey,
  grantsOfBuild,
  imagesOf,
  kustomize,
  kustomizeFolders,
  readmeGrants,
  readmeGrantsOf,
  type KubeDoc,
} from './helpers/deploy.js';

/**
 * Every kustomize build under deploy/ (found by listing: an overlay added later is checked too), rendered by
 * kubectl's own kustomize ($KUBECTL, else kubectl on PATH): roleRefs that exist in the same build, images
 * that can be pulled, namespaces before what lives in them, and RBAC exactly as the READMEs list it. The
 * real API server applies the same builds in test/cluster/.
 */
const FOLDERS = kustomizeFolders();
/** Namespaces a build may use without creating them: `default`, and Spinnaker's own for its overlay. */
const EXTERNAL_NAMESPACES: Record<string, string[]> = {
  'deploy/clover-cd/overlays/spinnaker-namespace': ['default', 'spinnaker'],
};
const external = (folder: string) => EXTERNAL_NAMESPACES[folder] ?? ['default'];
const builds = new Map(FOLDERS.map((f) => [f, kustomize(f)]));
const rows = readmeGrants();

describe('deploy/ kustomize builds', () => {
  it('every folder of manifests under deploy/ is a kustomization (deploy/sdc and deploy/sdc/gateway-api, the sample app, apply with -f)', () => {
    const withManifests: string[] = [];
    const walk = (dir: string) => {
      const entries = readdirSync(dir, { withFileTypes: true });
      if (entries.some((e) => e.isFile() && e.name.endsWith('.yaml')))
        withManifests.push(relative(REPO, dir));
      for (const e of entries) if (e.isDirectory()) walk(join(dir, e.name));
    };
    walk(DEPLOY);
    expect(withManifests.filter((d) => d !== 'deploy/sdc' && d !== 'deploy/sdc/gateway-api')).toEqual(
      FOLDERS,
    );
    expect(FOLDERS).toEqual(
      expect.arrayContaining(['deploy/clover-cd', 'deploy/clover-cd/overlays/jobs-only', 'deploy/clovisor']),
    );
  });

  it.each(FOLDERS)(
    '%s: roleRefs defined in the build, registry-qualified published images, namespaces first',
    (folder) => {
      const docs = builds.get(folder)!;
      expect(docs.length).toBeGreaterThan(0);
      expect(buildProblems(docs, external(folder))).toEqual([]);
      // Each kustomization says what it applies, in a comment at its top.
      expect(readFileSync(join(REPO, folder, 'kustomization.yaml'), 'utf8')).toMatch(/^# \S/);
    },
  );

  it.each(FOLDERS)('%s: grants service accounts exactly what its README table lists', (folder) => {
    const fromBuild = grantsOfBuild(builds.get(folder)!).map(grantKey).sort();
    expect(fromBuild).toEqual(readmeGrantsOf(rows, folder).map(grantKey).sort());
  });

  it('ships clover-cd and clovisor as the published images, and the server and jobs-only grants', () => {
    const images = [...builds.values()].flat().flatMap(imagesOf);
    expect(images).toEqual(expect.arrayContaining([defaultImage('clover-cd'), defaultImage('clovisor')]));
    expect(defaultImage('clover-cd')).toMatch(/^ghcr\.io\/clover-cd\/clover-cd:\d+\.\d+\.\d+$/);
    const jobs = grantsOfBuild(builds.get('deploy/clover-cd/overlays/jobs-only')!).map(grantKey);
    expect(jobs).toContain('default:clover-cd in default: patch virtualservices.networking.istio.io');
  });

  it('manifests name images only by the short names their kustomization `images:` pins', () => {
    const pinned = new Set(
      FOLDERS.flatMap((f) =>
        (
          (
            yaml.load(readFileSync(join(REPO, f, 'kustomization.yaml'), 'utf8')) as {
              images?: Array<{ name: string }>;
            }
          ).images ?? []
        ).map((i) => i.name),
      ),
    );
    const named: string[] = [];
    for (const folder of FOLDERS) {
      for (const file of readdirSync(join(REPO, folder)).filter(
        (f) => f.endsWith('.yaml') && f !== 'kustomization.yaml',
      )) {
        const docs = (yaml.loadAll(readFileSync(join(REPO, folder, file), 'utf8')) as KubeDoc[]).filter(
          (d) => d && typeof d === 'object' && 'kind' in d,
        );
        // A strategic-merge patch's container without `image` keeps the base's: it names no image.
        named.push(
          ...docs
            .flatMap(imagesOf)
            .filter((i) => i !== '')
            .map((i) => `${folder}/${file}: ${i}`),
        );
      }
    }
    expect(named.length).toBeGreaterThanOrEqual(3);
    for (const n of named) {
      const image = n.split(': ')[1];
      expect({ n, short: /^[a-z0-9][a-z0-9-]*$/.test(image), pinned: pinned.has(image) }).toEqual({
        n,
        short: true,
        pinned: true,
      });
    }
  });

  it('the checks catch what a first apply trips on', () => {
    const jobs = structuredClone(builds.get('deploy/clover-cd/overlays/jobs-only')!);
    (jobs.find((d) => d.kind === 'RoleBinding')!.roleRef as { name: string }).name = 'clover-cd-release-jobs';
    expect(buildProblems(jobs)).toEqual([
      expect.stringContaining('roleRef ClusterRole clover-cd-release-jobs is not defined by this build'),
    ]);
    expect(grantsOfBuild(jobs)).toEqual([]);

    const server = structuredClone(builds.get('deploy/clover-cd')!);
    const deployment = server.find((d) => d.kind === 'Deployment')!;
    (deployment.spec as any).template.spec.containers[0].image = 'clover-cd:0.1.0';
    expect(buildProblems(server)).toEqual([
      expect.stringMatching(/Deployment clover-system\/clover-cd: image "clover-cd:0.1.0" names no registry/),
    ]);

    // deploy/clovisor applied file by file used to send the DaemonSet before its Namespace.
    const clovisor = builds.get('deploy/clovisor')!;
    const late = [
      ...clovisor.filter((d) => d.kind !== 'Namespace'),
      ...clovisor.filter((d) => d.kind === 'Namespace'),
    ];
    expect(buildProblems(late)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('DaemonSet clovisor/clovisor: namespace clovisor is created after it'),
      ]),
    );
    expect(buildProblems(clovisor.filter((d) => d.kind !== 'Namespace'))).toEqual(
      expect.arrayContaining([expect.stringContaining('namespace clovisor is not created by this build')]),
    );
  });

  // kubectl 1.20's kustomize (v2.0.3) reads folders only under `bases:`; v5 reads them there too, with a
  // warning. KUBECTL_1_20=/path/to/kubectl-1.20 (Debian's kubernetes-client) checks both build the same.
  (process.env.KUBECTL_1_20 ? it : it.skip)('kubectl 1.20 builds the same objects', () => {
    // Same objects; v2.0.3 orders objects of one kind differently, Namespaces first in both.
    const byId = (docs: KubeDoc[]) =>
      [...docs].sort((a, b) =>
        JSON.stringify([a.kind, a.metadata]).localeCompare(JSON.stringify([b.kind, b.metadata])),
      );
    for (const folder of FOLDERS) {
      const legacy = kustomize(folder, process.env.KUBECTL_1_20);
      expect({ folder, problems: buildProblems(legacy, external(folder)), docs: byId(legacy) }).toEqual({
        folder,
        problems: [],
        docs: byId(builds.get(folder)!),
      });
    }
  });
});
