/**
 * Dissemination events for report tests, written through the store exactly as the contract in
 * src-shared/domain/dissemination.ts specifies them (kind 'dissemination', objectId = the
 * dissemination id, the documented payloads). The store stamps each event with the current time,
 * so each is written under a fixed clock (`atClock`) to give fixtures known dates.
 */
import { DisseminationEventTypes as T, type AckSource, type FixityOutcome } from '../../src-shared/domain/dissemination';
import type { Store } from '../../src-main/service/db/store';

/** Runs `fn` with `new Date()` and `Date.now()` returning `iso` (other Date uses unchanged). */
export function atClock<R>(iso: string, fn: () => R): R {
  const Real = Date;
  const fixed = Real.parse(iso);
  class Fixed extends Real {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(fixed);
      else super(...(args as [string]));
    }
    static override now(): number {
      return fixed;
    }
  }
  globalThis.Date = Fixed as DateConstructor;
  try {
    return fn();
  } finally {
    globalThis.Date = Real;
  }
}

export type Step =
  | { type: 'sent'; at: string; bytes: number; files: number; fixity: FixityOutcome; attempt?: number }
  | { type: 'failed'; at: string; error: string; final: boolean; attempt: number }
  | { type: 'retried'; at: string; attempt: number; by?: 'archivist' | 'policy' }
  | { type: 'acknowledged'; at: string; via: AckSource; undelivered?: boolean }
  | { type: 'damaged'; at: string; path: string; reason: string };

export interface FixtureDissemination {
  id: string;
  urn: string;
  productName: string;
  tenant?: string;
  recipientLabel: string;
  ackRequired?: boolean;
  recipientKind?: 'amqp' | 'webhook' | 's3' | 'folder';
  requestedAt: string;
  steps?: Step[];
}

interface Pending {
  at: string;
  order: number;
  objectId: string;
  type: string;
  payload: Record<string, unknown>;
}

function eventsOf(d: FixtureDissemination, order: { n: number }): Pending[] {
  const base = { urn: d.urn, recipientLabel: d.recipientLabel, tenant: d.tenant ?? 'project1' };
  const out: Pending[] = [];
  const push = (at: string, type: string, payload: Record<string, unknown>) => out.push({ at, order: order.n++, objectId: d.id, type, payload: { ...base, ...payload } });
  push(d.requestedAt, T.requested, { productName: d.productName, blocking: false, ackRequired: d.ackRequired ?? false, recipientKind: d.recipientKind ?? 'folder' });
  let attempts = 1;
  for (const s of d.steps ?? []) {
    if (s.type === 'sent') {
      push(s.at, T.sent, { attempt: s.attempt ?? attempts, bytes: s.bytes, files: s.files, fixity: s.fixity });
      // as the dissemination capability does: without ackRequired, DONE at once, acknowledged 'auto'
      if (!d.ackRequired) push(s.at, T.acknowledged, { via: 'auto' });
    } else if (s.type === 'failed') {
      attempts = s.attempt;
      push(s.at, T.failed, { attempt: s.attempt, error: s.error, final: s.final });
    } else if (s.type === 'retried') {
      attempts = s.attempt;
      push(s.at, T.retried, { attempt: s.attempt, by: s.by ?? 'archivist' });
    } else if (s.type === 'acknowledged') {
      push(s.at, T.acknowledged, { via: s.via, ...(s.undelivered ? { undelivered: true } : {}) });
    } else {
      push(s.at, 'dissemination.destination-damaged', { path: s.path, reason: s.reason });
    }
  }
  return out;
}

/** Writes the disseminations' events in time order (as they would have happened), in one transaction. */
export function writeDisseminations(store: Store, list: FixtureDissemination[], extra: Array<{ at: string; objectId: string; type: string; payload: Record<string, unknown> }> = []): void {
  const order = { n: 0 };
  const events = [...list.flatMap((d) => eventsOf(d, order)), ...extra.map((e) => ({ ...e, order: order.n++ }))];
  events.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.order - b.order));
  store.transact((tx) => {
    for (const e of events) atClock(e.at, () => tx.event({ kind: 'dissemination', objectId: e.objectId, type: e.type, payload: e.payload }));
  });
}

export const RECIPIENTS = ['Bibliothèque nationale de France', 'Nasjonalbiblioteket, Mo i Rana', 'Région Île-de-France', 'Tromsø byarkiv', 'CNES Toulouse', 'Ærøskøbing museum'];

/** A deterministic pseudo-random generator (mulberry32), so that generated fixtures are the same every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `n` disseminations requested from `start` over `days` days, written in chunks (bounded memory):
 * a mix of DONE (acknowledged or auto), WAITING_ACK, PENDING and FAILED, with accented names.
 */
export function writeManyDisseminations(store: Store, n: number, opts: { start?: string; days?: number; seed?: number; chunk?: number } = {}): void {
  const start = Date.parse(opts.start ?? '2026-01-01T00:00:00.000Z');
  const span = (opts.days ?? 90) * 86_400_000;
  const rnd = prng(opts.seed ?? 7);
  const chunk = opts.chunk ?? 2000;
  const iso = (ms: number) => new Date(ms).toISOString();
  for (let from = 0; from < n; from += chunk) {
    const list: FixtureDissemination[] = [];
    for (let i = from; i < Math.min(n, from + chunk); i++) {
      const requested = start + Math.floor((i / n) * span);
      const recipientLabel = RECIPIENTS[i % RECIPIENTS.length];
      const ackRequired = i % 3 !== 0;
      const r = rnd();
      const steps: Step[] = [];
      const sentAt = iso(requested + 1000 + Math.floor(rnd() * 60_000));
      const bytes = Math.floor(rnd() * 50_000_000);
      if (r < 0.08) {
        steps.push({ type: 'failed', at: sentAt, error: `connect ECONNREFUSED 10.0.0.${i % 250}:443 (attempt 1)`, final: true, attempt: 1 });
      } else if (r < 0.16) {
        // still pending: nothing after the request
      } else {
        steps.push({ type: 'sent', at: sentAt, bytes, files: 1 + (i % 40), fixity: i % 50 === 0 ? 'failed' : 'verified' });
        if (ackRequired && r > 0.3) steps.push({ type: 'acknowledged', at: iso(Date.parse(sentAt) + Math.floor(rnd() * 3_600_000)), via: 'amqp' });
      }
      list.push({
        id: `d-${String(i).padStart(7, '0')}`,
        urn: `URN:FEATURE:DATA:project1:${String(i).padStart(8, '0')}-4c1e-8a2b-9d3f-${String(i % 1000).padStart(12, '0')}:V1`,
        productName: `Orthophotographie ${i % 97 === 0 ? 'très longue de la commune de Saint-Rémy-lès-Chevreuse, dalle ' : 'dalle '}${i}`,
        recipientLabel,
        ackRequired,
        requestedAt: iso(requested),
        steps,
      });
    }
    writeDisseminations(store, list);
  }
}
