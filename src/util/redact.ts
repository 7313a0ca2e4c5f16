/**
 * Secrets never reach logs, errors, reports or evidence. Values registered here are replaced wherever
 * text leaves the process (the CLI's output functions, the stage server's logs and job states, evidence
 * bundles, JUnit / Markdown / property files); well-known secret shapes are masked too: the userinfo of
 * any URL (`http://user:***@host`, `redis://:***@host`), `Authorization: Bearer ***`, and `key=value` /
 * `"key": "value"` pairs whose key names a secret. Masking keeps the text readable: a sentence such as
 * "no GitHub token: set GITHUB_TOKEN" is not a key-value pair, and a registered value shorter than
 * 8 characters is masked only where it stands as a word of its own (never inside other words).
 */
const registered = new Set<string>();
const MASK = '***';
/** Registered values this long or longer are masked wherever they appear, even inside other text. */
const ANYWHERE = 8;

export function registerSecret(value: string | undefined): void {
  const v = value?.trim();
  if (v && v.length >= 4) registered.add(v);
}

/** Forget registered values (tests). */
export function clearSecrets(): void {
  registered.clear();
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** scheme://user:password@ or scheme://token@ in any URL-like text (http, https, redis, rediss, amqp, ...). */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/@:?#"'<>]*)(?::([^\s/@?#"'<>]*))?@/gi;
const AUTH_HEADER = /\b(authorization:\s*)(bearer|basic|token)\s+[^\s"'\\,;]+/gi;
/** A key naming a secret, then = or :, then a value. `:` counts only after a quoted key or at a line start (YAML). */
const SECRET_KEY = String.raw`[\w.-]*(?:token|password|passwd|secret|api[_-]?key|client-key-data|client-certificate-data)`;
const KEY_VALUE_EQ = new RegExp(String.raw`(^|[\s?&;,{("'-])(${SECRET_KEY}=)([^\s&;,"'}]+)`, 'gim');
const KEY_VALUE_JSON = new RegExp(String.raw`("${SECRET_KEY}"\s*:\s*")((?:[^"\\]|\\.)+)(")`, 'gi');
const KEY_VALUE_YAML = new RegExp(
  String.raw`^(\s*-?\s*${SECRET_KEY}:[ \t]+)(?!\*\*\*)(["']?)([^\s"'#][^\s"']*)`,
  'gim',
);

export function redact(text: string): string {
  let out = text;
  for (const secret of registered) {
    if (!out.includes(secret)) continue;
    out =
      secret.length >= ANYWHERE
        ? out.split(secret).join(MASK)
        : out.replace(new RegExp(`(?<![A-Za-z0-9_])${escapeRe(secret)}(?![A-Za-z0-9_])`, 'g'), MASK);
  }
  if (!/[@=:]/.test(out)) return out; // none of the shapes below can match
  out = out.replace(URL_USERINFO, (_m, scheme: string, user: string, password: string | undefined) =>
    password !== undefined ? `${scheme}${user}:${MASK}@` : user ? `${scheme}${MASK}@` : `${scheme}@`,
  );
  out = out.replace(AUTH_HEADER, `$1$2 ${MASK}`);
  out = out.replace(KEY_VALUE_EQ, (m, pre: string, key: string, value: string) =>
    value === MASK ? m : `${pre}${key}${MASK}`,
  );
  out = out.replace(KEY_VALUE_JSON, `$1${MASK}$3`);
  out = out.replace(KEY_VALUE_YAML, `$1$2${MASK}`);
  return out;
}

const SECRET_KEY_ONLY = new RegExp(`^${SECRET_KEY}$`, 'i');

/**
 * `redact` on every string of a JSON-like value, and string values under a key naming a secret masked
 * whole: for documents written as JSON (evidence bundles), which stay valid JSON.
 */
export function redactDeep<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v as unknown)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        redact(k),
        typeof v === 'string' && v && SECRET_KEY_ONLY.test(k) ? MASK : redactDeep(v),
      ]),
    ) as T;
  }
  return value;
}
