/**
 * Secrets never reach logs, errors, reports or evidence. Values registered here are replaced wherever
 * text leaves the process through the CLI's output functions; well-known secret shapes are masked too.
 */
const registered = new Set<string>();

export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) registered.add(value);
}

const PATTERNS: RegExp[] = [
  /(authorization:\s*)(bearer|basic)\s+[^\s"']+/gi,
  /("?(?:token|password|secret|client-key-data|client-certificate-data)"?\s*[:=]\s*"?)([^\s",}]+)/gi,
  /(https?:\/\/)([^:@/\s]+):([^@/\s]+)@/gi,
];

export function redact(text: string): string {
  let out = text;
  for (const secret of registered) out = out.split(secret).join('***');
  out = out.replace(PATTERNS[0], '$1$2 ***');
  out = out.replace(PATTERNS[1], '$1***');
  out = out.replace(PATTERNS[2], '$1$2:***@');
  return out;
}
