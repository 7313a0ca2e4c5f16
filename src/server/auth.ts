import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { sidecarIdentity, type Peer } from '../services/mesh-identity.js';

/**
 * Who may call the stage server: a bearer token (what Orca's preconfigured webhook stages send in customHeaders),
 * an HMAC-SHA256 signature of the raw body with a shared secret (`X-Clover-Signature: sha256=<hex>`, for scripts
 * and CI that can sign), or — only when told to trust it — the mesh identity the local Istio sidecar vouches for
 * (inline webhook stages, which cannot carry a secret; `mesh.ts`). Comparisons are constant-time; secrets are never
 * logged or echoed.
 */
export interface AuthConfig {
  token?: string;
  hmacSecret?: string;
  /** SPIFFE ids admitted by their mesh identity (`serve --trust-mesh-principal`); none by default. */
  trustMeshPrincipals?: string[];
}

export type AuthResult =
  | { ok: true; by: 'bearer' | 'signature' | 'mesh' | 'none'; principal?: string }
  | { ok: false; status: 401 | 403; message: string };

export const SIGNATURE_HEADER = 'x-clover-signature';

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** Constant-time equality of two strings of any length (compares their SHA-256 digests). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export function signBody(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function authEnabled(cfg: AuthConfig): boolean {
  return Boolean(cfg.token || cfg.hmacSecret || cfg.trustMeshPrincipals?.length);
}

/**
 * What the headers alone decide, before any body byte is read: a valid bearer token passes, a missing
 * or wrong credential fails (401 / 403), and a well-formed signature leaves the decision to the body
 * (`needs-body`, then `checkSignature`).
 */
export function checkHeaders(
  cfg: AuthConfig,
  headers: IncomingHttpHeaders,
  peer: Peer = {},
): AuthResult | { ok: 'needs-body' } {
  if (!authEnabled(cfg)) return { ok: true, by: 'none' };
  const authz = headers.authorization;
  const signature = headers[SIGNATURE_HEADER];
  if (authz) {
    const m = /^Bearer\s+(.+)$/i.exec(authz.trim());
    if (m && cfg.token && safeEqual(m[1].trim(), cfg.token)) return { ok: true, by: 'bearer' };
    if (!signature)
      return { ok: false, status: 403, message: 'the bearer token is not valid for this server' };
  }
  if (typeof signature === 'string') {
    if (!cfg.hmacSecret)
      return { ok: false, status: 403, message: 'this server does not accept signed requests' };
    if (!/^sha256=[0-9a-f]{64}$/i.test(signature.trim()))
      return { ok: false, status: 403, message: `${SIGNATURE_HEADER} must be "sha256=<64 hex digits>"` };
    return { ok: 'needs-body' };
  }
  const trusted = cfg.trustMeshPrincipals ?? [];
  let meshProblem = '';
  if (trusted.length) {
    const id = sidecarIdentity(headers, peer);
    if ('principals' in id) {
      const principal = id.principals.find((p) => trusted.includes(p));
      if (principal) return { ok: true, by: 'mesh', principal };
      return {
        ok: false,
        status: 403,
        message: `the mesh identity ${id.principals.join(', ') || '(none)'} is not one this server trusts (serve --trust-mesh-principal)`,
      };
    }
    meshProblem = id.problem ? `; ${id.problem}` : '';
  }
  const ways = [
    `"Authorization: Bearer <token>"`,
    ...(cfg.hmacSecret ? [`"${SIGNATURE_HEADER}: sha256=<HMAC-SHA256 of the body>"`] : []),
    ...(trusted.length ? [`a call through the mesh as ${trusted.join(' or ')}`] : []),
  ];
  return {
    ok: false,
    status: 401,
    message: `authentication required: send ${ways.join(' or ')}${meshProblem}`,
  };
}

/** The signature check, once the body is read (after `checkHeaders` answered `needs-body`). */
export function checkSignature(cfg: AuthConfig, headers: IncomingHttpHeaders, rawBody: Buffer): AuthResult {
  const m = /^sha256=([0-9a-f]{64})$/i.exec(String(headers[SIGNATURE_HEADER] ?? '').trim());
  if (!m || !cfg.hmacSecret)
    return { ok: false, status: 403, message: `${SIGNATURE_HEADER} must be "sha256=<64 hex digits>"` };
  const expected = createHmac('sha256', cfg.hmacSecret).update(rawBody).digest();
  if (timingSafeEqual(Buffer.from(m[1], 'hex'), expected)) return { ok: true, by: 'signature' };
  return { ok: false, status: 403, message: 'the signature does not match the request body' };
}

/** Both steps at once (callers that hold the whole body already). */
export function checkAuth(cfg: AuthConfig, headers: IncomingHttpHeaders, rawBody: Buffer): AuthResult {
  const h = checkHeaders(cfg, headers);
  return h.ok === 'needs-body' ? checkSignature(cfg, headers, rawBody) : h;
}
