/**
 * Who may see the dashboard: the API's bearer token, or a read-only token (`serve --read-token-env`), sent
 * as `Authorization: Bearer` (scripts) or, in a browser, exchanged once on the login form for a session
 * cookie. The cookie holds no token: it is `<role>.<expiry>.<HMAC>` keyed by a digest of the server's
 * secrets, so replicas with the same secrets accept each other's sessions, a changed token ends every
 * session, and the token never sits in the browser. HttpOnly (no script reads it), SameSite=Strict (no
 * other site sends it), Path=/ui (the API never sees it); the dashboard is read-only.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { safeEqual, type AuthConfig } from './auth.js';

export const SESSION_COOKIE = 'clover_cd_ui';
const SESSION_MS = 12 * 3600_000;

export interface UiAuthConfig extends AuthConfig {
  /** A token that opens the dashboard only (read-only). */
  readToken?: string;
}

export type UiRole = 'admin' | 'read';

export const uiAuthEnabled = (cfg: UiAuthConfig) => Boolean(cfg.token || cfg.hmacSecret || cfg.readToken);

function key(cfg: UiAuthConfig): Buffer {
  return createHash('sha256')
    .update(`clover-cd-ui\0${cfg.token ?? ''}\0${cfg.readToken ?? ''}\0${cfg.hmacSecret ?? ''}`)
    .digest();
}

/** The role a token grants, or undefined. */
export function roleOfToken(cfg: UiAuthConfig, token: string): UiRole | undefined {
  if (cfg.token && safeEqual(token, cfg.token)) return 'admin';
  if (cfg.readToken && safeEqual(token, cfg.readToken)) return 'read';
  return undefined;
}

export function sessionCookie(cfg: UiAuthConfig, role: UiRole, secure: boolean, now = Date.now()): string {
  const payload = `${role}.${now + SESSION_MS}`;
  const sig = createHmac('sha256', key(cfg)).update(payload).digest('base64url');
  return `${SESSION_COOKIE}=${payload}.${sig}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=${SESSION_MS / 1000}${secure ? '; Secure' : ''}`;
}

export const clearedCookie = `${SESSION_COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0`;

function cookieValue(headers: IncomingHttpHeaders): string | undefined {
  for (const part of String(headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === SESSION_COOKIE) return v.join('=');
  }
  return undefined;
}

/** The role a request carries (bearer token or session cookie); 'open' when the server has no credentials. */
export function uiRole(
  cfg: UiAuthConfig,
  headers: IncomingHttpHeaders,
  now = Date.now(),
): UiRole | 'open' | undefined {
  if (!uiAuthEnabled(cfg)) return 'open';
  const m = /^Bearer\s+(.+)$/i.exec(String(headers.authorization ?? '').trim());
  if (m) return roleOfToken(cfg, m[1].trim());
  const c = cookieValue(headers);
  const parts = c?.split('.');
  if (!parts || parts.length !== 3) return undefined;
  const [role, exp, sig] = parts;
  if ((role !== 'admin' && role !== 'read') || !(Number(exp) > now)) return undefined;
  const want = createHmac('sha256', key(cfg)).update(`${role}.${exp}`).digest();
  const got = Buffer.from(sig, 'base64url');
  return got.length === want.length && timingSafeEqual(got, want) ? role : undefined;
}
