/**
 * The file reads rendering needs (candidate manifests, a load plan named by path), kept apart from the
 * pure renderer. Paths are relative to the spec file, as the spec validator resolves them.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import * as yaml from 'js-yaml';
import { readYamlFile } from '../spec/load.js';
import type { LoadedSpec } from '../spec/types.js';
import type { KubeObject } from '../services/platform.js';
import { InvalidInputError } from '../util/errors.js';
import type { RenderInput } from './render.js';

export function readRenderInput(loaded: LoadedSpec): RenderInput {
  const { spec, dir } = loaded;
  const input: RenderInput = { spec, file: loaded.file };
  if (spec.service.candidateManifests) {
    const manifests: KubeObject[] = [];
    spec.service.candidateManifests.forEach((rel, i) => {
      const file = resolve(dir, rel);
      let docs: unknown[];
      try {
        docs = yaml.loadAll(readFileSync(file, 'utf8'), { filename: file });
      } catch (err) {
        throw new InvalidInputError(`${file}: cannot read candidate manifest: ${(err as Error).message}`, [
          {
            file: loaded.file,
            path: `service.candidateManifests[${i}]`,
            message: 'expected readable Kubernetes YAML',
          },
        ]);
      }
      for (const doc of docs) {
        if (doc == null) continue;
        const m = doc as KubeObject;
        if (typeof m !== 'object' || !m.kind || !m.apiVersion || !m.metadata?.name) {
          throw new InvalidInputError(
            `${file}: every document must be a Kubernetes object with apiVersion, kind and metadata.name`,
            [
              {
                file: loaded.file,
                path: `service.candidateManifests[${i}]`,
                message: 'expected Kubernetes manifests',
              },
            ],
          );
        }
        manifests.push(m);
      }
    });
    input.candidateManifests = manifests;
  }
  if (spec.load && typeof spec.load.plan === 'string')
    input.loadPlan = readYamlFile(resolve(dir, spec.load.plan)) as Record<string, unknown>;
  return input;
}
