/**
 * The caller identity an Istio sidecar vouches for (test/conformance/mesh-identity.json). Istio configures every
 * sidecar's inbound HTTP connection manager with forward_client_cert_details APPEND_FORWARD: on a mutual-TLS
 * connection Envoy appends one `x-forwarded-client-cert` element for the certificate it verified (By = its own
 * identity, URI = the peer's SPIFFE id) after whatever elements the request brought; on a connection without a
 * client certificate it removes the header. So only the LAST element is the sidecar's own statement, and only on a
 * connection that came from the sidecar: inbound clusters connect to the application from 127.0.0.6 (::6), or from
 * localhost. A request that did not come through the sidecar (another address), that carries the header more than
 * once, or whose last element lacks the sidecar's By, proves nothing.
 */
import type { IncomingHttpHeaders } from 'node:http';

export const XFCC_HEADER = 'x-forwarded-client-cert';

/** What the server knows about the connection itself. */
export interface Peer {
  /** The TCP peer address (`req.socket.remoteAddress`). */
  remoteAddress?: string;
  /** The request's raw header lines (`req.rawHeaders`), to count repeated headers node would join. */
  rawHeaders?: string[];
}

/** Addresses a sidecar connects to its application from (Istio's passthrough bind addresses and localhost). */
export function fromSidecar(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.toLowerCase().replace(/^::ffff:/, '');
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a) || a === '::1' || a === '::6';
}

/** Splits on `sep` outside double quotes (a quoted value may hold ',', ';' or '=' and \" for a quote). */
function splitUnquoted(text: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '\\' && i + 1 < text.length) {
      cur += c + text[++i];
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

const unquote = (v: string) =>
  v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/\\"/g, '"') : v;

/** One XFCC element as key (lower case) → values (a key may repeat: one URI per SAN). */
export function parseXfccElement(element: string): Map<string, string[]> {
  const pairs = new Map<string, string[]>();
  for (const part of splitUnquoted(element, ';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    pairs.set(key, [...(pairs.get(key) ?? []), unquote(part.slice(eq + 1).trim())]);
  }
  return pairs;
}

/** The header's elements, in order (the sidecar's own is the last). */
export const xfccElements = (value: string): string[] =>
  splitUnquoted(value, ',')
    .map((e) => e.trim())
    .filter(Boolean);

/**
 * The SPIFFE ids the local sidecar vouches for, or why there are none: the URI values of the last element, when the
 * request came from the sidecar's address with exactly one header line and the element carries the sidecar's By.
 */
export function sidecarIdentity(
  headers: IncomingHttpHeaders,
  peer: Peer,
): { principals: string[] } | { problem?: string } {
  const value = headers[XFCC_HEADER];
  if (value === undefined) return {};
  const lines =
    peer.rawHeaders?.filter((_, i) => i % 2 === 0 && peer.rawHeaders![i].toLowerCase() === XFCC_HEADER)
      .length ?? 1;
  if (lines !== 1 || typeof value !== 'string')
    return { problem: `${XFCC_HEADER} appears ${lines} times; a sidecar sets one` };
  if (!fromSidecar(peer.remoteAddress))
    return {
      problem: `${XFCC_HEADER} is trusted only from the local Istio sidecar (127.0.0.6, ::6 or localhost), not from ${peer.remoteAddress ?? 'an unknown address'}`,
    };
  const last = xfccElements(value).at(-1);
  const element = last ? parseXfccElement(last) : new Map<string, string[]>();
  if (!element.get('by')?.length)
    return { problem: `the last ${XFCC_HEADER} element has no By: it was not set by a sidecar` };
  return { principals: element.get('uri') ?? [] };
}

/**
 * The element a sidecar appends for a verified peer (By = the server's identity, URI = the peer's), after the
 * elements the request brought: how the local runner stands in for the mesh between Orca and the stage server.
 */
export function appendXfcc(existing: string | undefined, by: string, uri: string): string {
  const element = `By=${by};Subject="";URI=${uri}`;
  return existing ? `${existing},${element}` : element;
}
