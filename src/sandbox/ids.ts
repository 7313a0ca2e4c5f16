import type { Redis } from 'ioredis';
import type { AppRequest } from './mesh.js';
import type { SdcIdsRule } from '../services/sdc.js';

/**
 * snort-ids: inspects the requests mirrored to it against content rules and records alerts the way
 * Clover's snort_alerts.py did: `SADD snort_events <event-id>` and `HSET snort_event:<event-id>` with the
 * unified2 event + packet field names, then notifies proxy-access-control (ProcessAlerts).
 */
/** A content rule, as the SDC control API carries it (one definition for the gRPC client and this server). */
export type IdsRule = SdcIdsRule;

export interface IdsAlert {
  eventId: number;
  signatureId: number;
  signatureRevision: number;
  msg: string;
  second: number;
  microsecond: number;
  sourceIp: string;
  destinationIp: string;
  sourcePort: number;
  destinationPort: number;
  url: string;
  userAgent: string;
}

/** Clover's sample rule (idsrule_scan.yaml): the ASafaWeb scanner's User-Agent. */
export const ASAFAWEB_RULE: IdsRule = {
  sid: 10000003,
  rev: 1,
  msg: 'MALWARE-CNC User-Agent ASafaWeb Scan',
  protocol: 'tcp',
  content: 'asafaweb.com',
  srcIp: 'any',
  srcPort: 'any',
  destIp: '$HOME_NET',
  destPort: 'any',
};

export const SNORT_EVENTS_KEY = 'snort_events';
export const snortEventKey = (id: number | string): string => `snort_event:${id}`;

/** Render a rule in Snort's rule language, as Clover's AddRules appended it to local.rules. */
export function formatRule(r: IdsRule): string {
  const content = r.content ? ` content:"${r.content}";${r.nocase ? ' nocase;' : ''}` : '';
  return `alert ${r.protocol} ${r.srcIp ?? 'any'} ${r.srcPort ?? 'any'} -> ${r.destIp ?? '$HOME_NET'} ${r.destPort ?? 'any'} (msg:"${r.msg}";${content} sid:${r.sid}; rev:${r.rev};)`;
}

export class IdsEngine {
  readonly rules: IdsRule[] = [ASAFAWEB_RULE];
  /** Newest alerts kept in memory for ListAlerts (Redis holds them all). */
  readonly alerts: IdsAlert[] = [];
  inspected = 0;
  /** Inspecting (Clover's snort process running); a stopped IDS passes traffic without looking at it. */
  running = true;
  redisErrors = 0;
  private seq = 0;
  private pending = new Set<Promise<unknown>>();

  constructor(
    private readonly redis: Redis | undefined,
    private readonly notify: (alert: IdsAlert) => void,
    private readonly maxAlerts = 10_000,
  ) {}

  /** Clover's alert process starts by clearing the event set (event ids restart at 1). */
  async init(): Promise<void> {
    if (this.redis) await this.redis.del(SNORT_EVENTS_KEY);
  }

  addRule(rule: IdsRule): void {
    const i = this.rules.findIndex((r) => r.sid === rule.sid);
    if (i >= 0) this.rules[i] = rule;
    else this.rules.push(rule);
  }

  inspect(
    req: AppRequest,
    peer: { sourceIp: string; sourcePort: number; destinationIp: string; destinationPort: number },
  ): IdsAlert[] {
    if (!this.running) return [];
    this.inspected++;
    const head = `${req.method} ${req.path} HTTP/1.1\r\n${Object.entries(req.headers)
      .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`)
      .join('\r\n')}\r\n\r\n`;
    const payload = head + req.body.toString('latin1');
    const lower = payload.toLowerCase();
    const out: IdsAlert[] = [];
    for (const r of this.rules) {
      if (r.protocol === 'icmp' || r.protocol === 'udp') continue; // mirrored HTTP arrives over TCP
      if (r.destPort && r.destPort !== 'any' && r.destPort !== String(peer.destinationPort)) continue;
      if (r.content && !(r.nocase ? lower.includes(r.content.toLowerCase()) : payload.includes(r.content)))
        continue;
      const now = Date.now();
      const alert: IdsAlert = {
        eventId: ++this.seq,
        signatureId: r.sid,
        signatureRevision: r.rev,
        msg: r.msg,
        second: Math.floor(now / 1000),
        microsecond: (now % 1000) * 1000,
        ...peer,
        url: req.path,
        userAgent: String(req.headers['user-agent'] ?? ''),
      };
      out.push(alert);
      this.alerts.push(alert);
      if (this.alerts.length > this.maxAlerts) this.alerts.shift();
      this.store(alert, payload);
      this.notify(alert);
    }
    return out;
  }

  private store(a: IdsAlert, payload: string): void {
    if (!this.redis) return;
    const fields: Record<string, string> = {
      'sensor-id': '0',
      'event-id': String(a.eventId),
      'event-second': String(a.second),
      'event-microsecond': String(a.microsecond),
      'signature-id': String(a.signatureId),
      'generator-id': '1',
      'signature-revision': String(a.signatureRevision),
      'classification-id': '0',
      priority: '0',
      'source-ip': a.sourceIp,
      'destination-ip': a.destinationIp,
      'source-ip.raw': a.sourceIp,
      'destination-ip.raw': a.destinationIp,
      'sport-itype': String(a.sourcePort),
      'dport-icode': String(a.destinationPort),
      protocol: '6',
      'impact-flag': '0',
      impact: '0',
      blocked: '0',
      'mpls-label': 'None',
      'vlan-id': 'None',
      pad2: 'None',
      appid: 'None',
      packets: '[]',
      'extra-data': '[]',
      'packet-second': String(a.second),
      'packet-microsecond': String(a.microsecond),
      linktype: '1',
      length: String(Buffer.byteLength(payload)),
      data: payload.slice(0, 1500),
      msg: a.msg,
    };
    const p = this.redis
      .multi()
      .sadd(SNORT_EVENTS_KEY, String(a.eventId))
      .hset(snortEventKey(a.eventId), fields)
      .exec()
      .catch(() => {
        this.redisErrors++;
      });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  /** Start / stop inspecting; stopping clears the alerts kept in memory, as Clover's stop cleared Snort's logs (Redis keeps its events). */
  setRunning(on: boolean): boolean {
    if (this.running === on) return false;
    this.running = on;
    if (!on) this.alerts.length = 0;
    return true;
  }

  /** Wait until every alert write has reached Redis (or failed). */
  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
