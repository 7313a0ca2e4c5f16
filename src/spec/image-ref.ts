/** Image references as Docker reads them (pure). */

/**
 * The registry host an image reference starts with, as Docker reads it: a first path component with a '.' or
 * ':' or "localhost" is a host (`ghcr.io/org/app`); otherwise there is none (`opnfv/app` is on Docker Hub).
 */
export function registryHost(image: string): string | undefined {
  const slash = image.indexOf('/');
  if (slash < 0) return undefined;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}
