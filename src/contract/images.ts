/**
 * The images clover-cd publishes, named once: `<registry>/<component>:<version>`. The registry is a build-time
 * setting (`CLOVER_CD_REGISTRY` of scripts/build-images.sh, the `--build-arg` of the Dockerfiles); the default
 * below is what generated manifests, examples and deploy/ name. In every image `clover-cd` is on PATH and is
 * the entrypoint, so whatever runs in one is `["clover-cd", ...]` in exec form (README.md "Images").
 */
import { readFileSync } from 'node:fs';

export const DEFAULT_IMAGE_REGISTRY = 'ghcr.io/clover-cd';

/** The package version, which is also every image's tag (read once: src/ and dist/ sit at the same depth). */
export const CLOVER_CD_VERSION: string = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/** clover-cd: CLI, serve, stage, builtin load engine; clover-cd-jmeter: the same plus JMeter; clovisor: the eBPF tracer. */
export const IMAGE_COMPONENTS = ['clover-cd', 'clover-cd-jmeter', 'clovisor'] as const;
export type ImageComponent = (typeof IMAGE_COMPONENTS)[number];

/** The published image of a component, e.g. ghcr.io/clover-cd/clover-cd:0.1.0. */
export const defaultImage = (component: ImageComponent): string =>
  `${DEFAULT_IMAGE_REGISTRY}/${component}:${CLOVER_CD_VERSION}`;

/**
 * The registry an image reference names, or undefined when it names none (a container runtime then pulls from
 * Docker Hub: `clover-cd:0.1.0` means docker.io/library/clover-cd:0.1.0). The first path component is a
 * registry when it has a dot or a port, or is `localhost` — the rule of the distribution reference grammar.
 */
export function imageRegistry(reference: string): string | undefined {
  const slash = reference.indexOf('/');
  if (slash < 0) return undefined;
  const first = reference.slice(0, slash);
  return /[.:]/.test(first) || first === 'localhost' ? first : undefined;
}
