import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import {
  CLOVER_CD_VERSION,
  DEFAULT_IMAGE_REGISTRY,
  defaultImage,
  IMAGE_COMPONENTS,
  imageRegistry,
} from '../src/contract/images.js';
import { REPO } from './helpers/cli.js';
import { dockerfileStage } from './helpers/dockerfile.js';

/**
 * One name per image, everywhere: src/contract/images.ts, the Dockerfiles' build arguments and headers,
 * scripts/build-images.sh, the README's table and the examples; and the same entrypoint and PATH in every
 * build recipe. (`npm run test:images` runs the images themselves.)
 */
const read = (f: string) => readFileSync(join(REPO, f), 'utf8');

describe('image names', () => {
  it('are registry-qualified and versioned with the package', () => {
    expect(DEFAULT_IMAGE_REGISTRY).toBe('ghcr.io/clover-cd');
    expect(CLOVER_CD_VERSION).toBe(JSON.parse(read('package.json')).version);
    expect(IMAGE_COMPONENTS.map(defaultImage)).toEqual(
      ['clover-cd', 'clover-cd-jmeter', 'clovisor'].map((c) => `ghcr.io/clover-cd/${c}:${CLOVER_CD_VERSION}`),
    );
    expect([
      imageRegistry('clover-cd:0.1.0'),
      imageRegistry('opnfv/clover-ns-nginx-lb'),
      imageRegistry('ghcr.io/clover-cd/clover-cd:0.1.0'),
      imageRegistry('localhost:5000/x'),
      imageRegistry('localhost/x'),
    ]).toEqual([undefined, undefined, 'ghcr.io', 'localhost:5000', 'localhost']);
  });

  it.each(['Dockerfile', 'Dockerfile.clovisor'])(
    '%s: the same registry and version build arguments, and builds tagged with the published names',
    (file) => {
      const text = read(file);
      expect(text).toContain(`ARG CLOVER_CD_REGISTRY=${DEFAULT_IMAGE_REGISTRY}\n`);
      expect(text).toContain(`ARG CLOVER_CD_VERSION=${CLOVER_CD_VERSION}\n`);
      const tags = [...text.matchAll(/docker build .*?-t (\S+)/g)]
        .map((m) => m[1])
        .filter((t) => t.startsWith(DEFAULT_IMAGE_REGISTRY));
      expect(tags.length).toBeGreaterThan(0);
      for (const t of tags) expect(IMAGE_COMPONENTS.map(defaultImage)).toContain(t);
    },
  );

  it('scripts/build-images.sh names its images with the same default registry', () => {
    expect(read('scripts/build-images.sh')).toContain(
      `REGISTRY=\${CLOVER_CD_REGISTRY:-${DEFAULT_IMAGE_REGISTRY}}`,
    );
  });

  it('every recipe has entrypoint ["clover-cd"] and the same PATH', () => {
    const script = read('scripts/build-images.sh');
    const scriptPath = /^PATH_IN_IMAGE=(\S+)$/m.exec(script)![1];
    expect(script).toContain(`--change 'ENTRYPOINT ["clover-cd"]'`);
    for (const [file, stage] of [
      ['Dockerfile', undefined],
      ['Dockerfile', 'jmeter'],
      ['Dockerfile.clovisor', undefined],
    ] as const) {
      const s = dockerfileStage(join(REPO, file), stage);
      expect({ file, stage, entrypoint: s.entrypoint, path: s.env.PATH }).toEqual({
        file,
        stage,
        entrypoint: ['clover-cd'],
        path: scriptPath,
      });
    }
  });

  it("the README's Images table and the examples name the published images", () => {
    const table = read('README.md').split('## Images')[1].split('\n## ')[0];
    for (const c of IMAGE_COMPONENTS) expect(table).toContain(`\`${defaultImage(c)}\``);
    for (const f of readdirSync(join(REPO, 'examples')).filter((f) => f.endsWith('.yaml'))) {
      const image = (yaml.load(read(`examples/${f}`)) as { spinnaker?: { runJob?: { image?: string } } })
        .spinnaker?.runJob?.image;
      if (image) expect({ f, image }).toEqual({ f, image: defaultImage('clover-cd') });
    }
  });

  it('no source names an image of its own: the defaults come from src/contract/images.ts', () => {
    const offenders: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(join(REPO, dir), { withFileTypes: true })) {
        const p = `${dir}/${e.name}`;
        if (e.isDirectory()) walk(p);
        else if (
          p.endsWith('.ts') &&
          p !== 'src/contract/images.ts' &&
          /['"`](?:[\w.-]+\/)*(?:clover-cd|clover-cd-jmeter|clovisor|jmeter):[\w.]+['"`]|justb4\//.test(
            read(p),
          )
        )
          offenders.push(p);
      }
    };
    walk('src');
    expect(offenders).toEqual([]);
  });
});
