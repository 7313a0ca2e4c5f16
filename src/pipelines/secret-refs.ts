/**
 * Spinnaker secret references (`encrypted:<engine>!<param>:<value>...`) as kork's EncryptedSecret parses them, the
 * engines that resolve them and which deployment tool resolves which engine (test/conformance/kork-secret-engines.json).
 * A reference is resolved only in Spinnaker's configuration files, and only when the whole value is one. Pure.
 */

export type SecretEngine = 'k8s' | 's3' | 'secrets-manager' | 'gcs' | 'google-secrets-manager';

export interface EngineInfo {
  /** Parameters the engine refuses a reference without, and what each names. */
  required: Record<string, string>;
  optional: Record<string, string>;
  /** Who resolves it, for the orca-local.yml header and error messages. */
  tool: string;
  /** Where the fragment goes for that tool. */
  where: string;
  example: string;
}

const HALYARD_OR_OPERATOR =
  'Halyard: ~/.hal/default/profiles/orca-local.yml, then `hal deploy apply`; the Spinnaker Operator: SpinnakerService spec.spinnakerConfig.profiles.orca';

export const SECRET_ENGINES: Record<SecretEngine, EngineInfo> = {
  k8s: {
    required: { n: 'Secret name', k: 'key in the Secret' },
    optional: {},
    tool: 'the Spinnaker Operator (its k8s engine; kork has none, so under Halyard Orca fails with "Secret Engine does not exist: k8s")',
    where:
      "the Spinnaker Operator: SpinnakerService spec.spinnakerConfig.profiles.orca (the Secret in the SpinnakerService's namespace)",
    example: 'encrypted:k8s!n:clover-cd!k:authorization',
  },
  s3: {
    required: { b: 'bucket', r: 'region', f: 'file in the bucket' },
    optional: { k: 'dotted key into the file read as YAML' },
    tool: "kork's s3 engine in Orca (Halyard or the Operator)",
    where: HALYARD_OR_OPERATOR,
    example: 'encrypted:s3!r:us-west-2!b:my-bucket!f:spinnaker/secrets.yml!k:cloverCd.authorization',
  },
  'secrets-manager': {
    required: { s: 'secret name', r: 'region' },
    optional: { k: "key of the secret's JSON object" },
    tool: "kork's secrets-manager engine (AWS Secrets Manager) in Orca (Halyard or the Operator)",
    where: HALYARD_OR_OPERATOR,
    example: 'encrypted:secrets-manager!r:us-west-2!s:spinnaker/clover-cd!k:authorization',
  },
  gcs: {
    required: { b: 'bucket', f: 'file in the bucket' },
    optional: { k: 'dotted key into the file read as YAML' },
    tool: "kork's gcs engine in Orca (Halyard or the Operator)",
    where: HALYARD_OR_OPERATOR,
    example: 'encrypted:gcs!b:my-bucket!f:spinnaker/secrets.yml!k:cloverCd.authorization',
  },
  'google-secrets-manager': {
    required: { p: 'project number', s: 'secret id' },
    optional: { k: "key of the secret's JSON object", v: 'version (default latest)' },
    tool: "kork's google-secrets-manager engine in Orca (Halyard or the Operator)",
    where: HALYARD_OR_OPERATOR,
    example: 'encrypted:google-secrets-manager!p:123456789012!s:clover-cd-authorization',
  },
};

export const SECRET_ENGINE_NAMES = Object.keys(SECRET_ENGINES) as SecretEngine[];
/** The engine `orca-config` writes for when no --secrets is given: the Operator's, which needs no cloud storage. */
export const DEFAULT_SECRET_ENGINE: SecretEngine = 'k8s';

export interface SecretReference {
  engine: string;
  params: Record<string, string>;
}

// kork's ENCRYPTED_STRING_REGEX, matched in full as String.matches does.
const REFERENCE = /^encrypted:.+(![a-zA-Z0-9]+:.+)+$/s;

/** The reference as kork parses it, or undefined when the value is not one (kork then uses it as it is). */
export function parseSecretReference(value: string): SecretReference | undefined {
  if (!REFERENCE.test(value)) return undefined;
  const parts = value.split('!');
  const params: Record<string, string> = {};
  let engine = '';
  for (const [i, part] of parts.entries()) {
    const colon = part.indexOf(':');
    if (colon < 0) return undefined; // kork: "keys and values must be delimited by ':'"
    if (i === 0) engine = part.slice(colon + 1);
    else params[part.slice(0, colon)] = part.slice(colon + 1);
  }
  return { engine, params };
}

/** Why `value` is not a reference `engine` resolves (syntax, another engine, a missing parameter), or undefined. */
export function secretReferenceProblem(value: string, engine: SecretEngine): string | undefined {
  const ref = parseSecretReference(value);
  if (!ref)
    return `expected a Spinnaker secret reference such as ${SECRET_ENGINES[engine].example} (kork's syntax encrypted:<engine>!<param>:<value>...)`;
  if (ref.engine !== engine) {
    const known = (SECRET_ENGINE_NAMES as string[]).includes(ref.engine);
    return `the reference names engine "${ref.engine}" but the fragment is for ${engine} (${SECRET_ENGINES[engine].tool})${known ? `: pass --secrets ${ref.engine} if that is what resolves it` : `: no Spinnaker tool has a "${ref.engine}" engine ("Secret Engine does not exist")`}`;
  }
  const info = SECRET_ENGINES[engine];
  const missing = Object.keys(info.required).filter((p) => !ref.params[p]);
  if (missing.length)
    return `engine ${engine} needs ${missing.map((p) => `${p}: (${info.required[p]})`).join(', ')}, e.g. ${info.example}`;
  const unknown = Object.keys(ref.params).filter((p) => !(p in info.required) && !(p in info.optional));
  if (unknown.length)
    return `engine ${engine} has no parameter ${unknown.map((p) => `"${p}"`).join(', ')} (it reads ${[...Object.keys(info.required), ...Object.keys(info.optional)].join(', ')})`;
  return undefined;
}

export const isSecretEngine = (v: string): v is SecretEngine => (SECRET_ENGINE_NAMES as string[]).includes(v);
