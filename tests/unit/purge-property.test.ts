/**
 * Property: whatever the messages and the rules, the purge never deletes a message whose status is
 * not final, whose type is in no task, or that is younger than its task's delay; and rules naming a
 * non-final status are refused before anything runs.
 */
import fc from 'fast-check';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, openDatabase } from '../../src-main/service/db/database';
import { coreMigrations } from '../../src-main/service/db/migrations';
import { Store } from '../../src-main/service/db/store';
import { parseDuration, subtractDuration } from '../../src-main/service/messages/duration';
import { rescan } from '../../src-main/service/messages/indexer';
import { DirectoryLock } from '../../src-main/service/messages/lock';
import { messagesMigrations } from '../../src-main/service/messages/migrations';
import { buildMedonaXml } from '../../src-main/service/messages/parse';
import { cutoffs, selectForPurge, type PurgeCandidate } from '../../src-main/service/messages/purge';
import { parsePurgeRules } from '../../src-main/service/messages/purge-rules';
import { finalStatuses, isFinalStatus, MessageStatuses, MessageTypes, type MessageType } from '../../src-shared/domain/message';
import { tempDirs } from '../helpers/util';

const dir = tempDirs(afterEach);
const NOW = new Date('2026-03-31T12:00:00.000Z');
const DAY = 86_400_000;
const DELAYS = ['P7D', 'PT12H', 'P1M', 'P1Y2M3DT4H', 'P0D', 'PT1S', 'P2W', 'P1Y'];

/** Random upper/lower case: the seed's table is upper-case, its example lower-case. */
const anyCase = (s: string) => fc.constantFrom(s, s.toUpperCase(), s[0].toUpperCase() + s.slice(1));
/** Mostly types and statuses a rule can name, so that many messages are close calls. */
const typeArb = fc.oneof({ arbitrary: fc.constantFrom<string>('ArchiveTransfer', 'ArchiveDeliveryRequestReply', 'ArchiveRestitution'), weight: 3 }, fc.constantFrom<string>(...MessageTypes, 'Invoice'));
const statusArb = fc.oneof({ arbitrary: fc.constantFrom<string>('rejected', 'processed', 'invalid', 'received'), weight: 3 }, fc.constantFrom<string>(...MessageStatuses)).chain(anyCase);

const PURGEABLE = ['ArchiveTransfer', 'ArchiveDeliveryRequestReply', 'ArchiveRestitution'] as const;
/** A task the seed allows: types with final statuses, statuses final for all of them. */
const validTaskArb = fc.uniqueArray(fc.constantFrom(...PURGEABLE), { minLength: 1, maxLength: 3 }).chain((types) => {
  const common = MessageStatuses.filter((s) => types.every((t) => (finalStatuses[t] ?? []).includes(s)));
  return fc.record({
    types: fc.constant<string[]>(types),
    statuses: fc.uniqueArray(fc.constantFrom(...common), { minLength: 1, maxLength: common.length }).chain((ss) => fc.tuple(...ss.map(anyCase))),
    delay: fc.constantFrom(...DELAYS),
  });
});
/** Any task: often invalid (a non-final status, a type without final status, an unknown type). */
const anyTaskArb = fc.record({
  types: fc.uniqueArray(fc.constantFrom<string>(...PURGEABLE, 'ArchiveTransferReply', 'Acknowledgement', 'Invoice'), { minLength: 1, maxLength: 3 }),
  statuses: fc.uniqueArray(fc.constantFrom('rejected', 'processed', 'invalid', 'received', 'sent', 'processing').chain(anyCase), { minLength: 1, maxLength: 3 }),
  delay: fc.constantFrom(...DELAYS),
});
const taskArb = fc.oneof({ arbitrary: validTaskArb, weight: 4 }, { arbitrary: anyTaskArb, weight: 1 });
const rulesArb = fc.array(taskArb, { minLength: 1, maxLength: 3 });

/** Seed syntax: single quotes, the whole thing a JSON-like object. */
function ruleText(tasks: Array<{ types: string[]; statuses: string[]; delay: string }>): string {
  const q = (s: string) => `'${s}'`;
  return `{\n${tasks.map((t, i) => `${q(`Task_${i}`)} : {\n'type' : [${t.types.map(q).join(', ')}],\n'status' : [${t.statuses.map(q).join(', ')}],\n'delay' : ${q(t.delay)}\n}`).join(',\n')}\n}`;
}

/** Ages around every delay's boundary, and anywhere up to two years. */
const ageArb = fc.oneof(
  fc.integer({ min: 0, max: 730 * DAY }),
  fc.constantFrom(...DELAYS).chain((d) => {
    const p = parseDuration(d);
    if ('error' in p) throw new Error(p.error);
    const boundary = NOW.getTime() - subtractDuration(NOW, p.duration).getTime();
    return fc.integer({ min: Math.max(0, boundary - 2000), max: boundary + 2000 });
  }),
);
const messageArb = fc.record({
  state: fc.constantFrom('ok', 'ok', 'ok', 'unknown', 'unparseable'),
  type: fc.option(typeArb, { nil: null }),
  status: fc.option(statusArb, { nil: null }),
  age: ageArb,
});

/** What a correct purge may delete: the three conditions of the seed, checked independently. */
function mayDelete(m: PurgeCandidate, tasks: ReturnType<typeof parsePurgeRules>['tasks']): boolean {
  if (m.state !== 'ok' || !m.type || !m.status || !m.date) return false;
  if (!isFinalStatus(m.type, m.status)) return false;
  return tasks.some((t) => {
    const d = parseDuration(t.delay);
    if ('error' in d) return false;
    return (
      (t.types as string[]).includes(m.type!) &&
      (t.statuses as string[]).includes(m.status!.toLowerCase()) &&
      Date.parse(m.date!) < subtractDuration(NOW, d.duration).getTime()
    );
  });
}

describe('purge selection (property)', () => {
  it('selects exactly the messages that are final, in a task, and older than its delay', () => {
    let eligibleSeen = 0;
    let refusedSeen = 0;
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 60 }), rulesArb, (messages, rules) => {
        const parsed = parsePurgeRules(ruleText(rules));
        const nonFinal = rules.some((t) => t.types.some((ty) => t.statuses.some((s) => !isFinalStatus(ty, s))));
        const badType = rules.some((t) => t.types.includes('Invoice'));
        // a rule naming a non-final status or an unknown type is refused as a whole
        expect(parsed.errors.length > 0).toBe(nonFinal || badType);
        if (parsed.errors.length) return void refusedSeen++;
        const candidates: PurgeCandidate[] = messages.map((m, i) => ({ id: `M${i}`, state: m.state, type: m.type, status: m.status, date: new Date(NOW.getTime() - m.age).toISOString() }));
        const selected = new Set(selectForPurge(candidates, cutoffs(parsed.tasks, NOW)).map((s) => s.message.id));
        for (const m of candidates) {
          const inTask = parsed.tasks.some((t) => (t.types as string[]).includes(m.type ?? ''));
          if (selected.has(m.id)) {
            expect(isFinalStatus(m.type!, m.status), `${m.id} ${m.type} ${m.status} is final`).toBe(true);
            expect(inTask, `${m.id} type ${m.type} is in a task`).toBe(true);
          }
          expect(selected.has(m.id), `${m.id} ${JSON.stringify(m)}`).toBe(mayDelete(m, parsed.tasks));
        }
        eligibleSeen += selected.size;
      }),
      { numRuns: 400 },
    );
    // the generators reach both sides: purgeable messages, and refused rule sets
    expect(eligibleSeen).toBeGreaterThan(30);
    expect(refusedSeen).toBeGreaterThan(20);
  });
});

describe('purge on disk (property)', () => {
  it('never deletes a non-final, untasked or too young message from the directory', async () => {
    let deleted = 0;
    let kept = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ type: fc.constantFrom<MessageType>('ArchiveTransfer', 'ArchiveDeliveryRequestReply', 'ArchiveRestitution', 'ArchiveTransferReply', 'Acknowledgement'), status: fc.option(statusArb, { nil: null }), age: ageArb }),
          { minLength: 1, maxLength: 12 },
        ),
        fc.array(validTaskArb, { minLength: 1, maxLength: 3 }),
        async (messages, rules) => {
          const root = dir();
          const parsed = parsePurgeRules(ruleText(rules));
          expect(parsed.errors).toEqual([]);
          messages.forEach((m, i) => {
            const id = `MSG-${i}`;
            fs.mkdirSync(path.join(root, id));
            const xml = buildMedonaXml({ type: m.type, reference: id, date: new Date(NOW.getTime() - m.age).toISOString(), sender: 'A', recipient: 'B' });
            fs.writeFileSync(path.join(root, id, `${id}.xml`), xml);
            fs.writeFileSync(path.join(root, id, 'attachment.pdf'), 'pdf');
            fs.writeFileSync(path.join(root, `${id}.zip`), 'zip');
            if (m.status) fs.writeFileSync(path.join(root, id, `${id}.status`), m.status);
          });
          const db = openDatabase(':memory:');
          migrate(db, [...coreMigrations, ...messagesMigrations]);
          const store = new Store(db);
          await rescan(root, store, { trigger: 'test' });
          const { runPurge } = await import('../../src-main/service/messages/purge');
          const report = await runPurge({
            root,
            store,
            lock: new DirectoryLock(root, 'test', 5000),
            tasks: parsed.tasks,
            dryRun: false,
            now: NOW,
            limit: 1000,
            waitForLockMs: 1000,
            trigger: 'internal',
          });
          messages.forEach((m, i) => {
            const id = `MSG-${i}`;
            const eligible = mayDelete({ id, state: 'ok', type: m.type, status: m.status, date: new Date(NOW.getTime() - m.age).toISOString() }, parsed.tasks);
            expect(fs.existsSync(path.join(root, id)), `${id} ${JSON.stringify(m)} folder`).toBe(!eligible);
            expect(fs.existsSync(path.join(root, `${id}.zip`)), `${id} archive`).toBe(!eligible);
            expect(report.items.some((it) => it.id === id && it.deleted)).toBe(eligible);
          });
          expect(db.prepare('SELECT count(*) FROM messages').pluck().get()).toBe(messages.length - report.totals.messages);
          deleted += report.totals.messages;
          kept += messages.length - report.totals.messages;
          db.close();
        },
      ),
      { numRuns: 60 },
    );
    expect(deleted).toBeGreaterThan(5);
    expect(kept).toBeGreaterThan(20);
  });

  it('has final statuses for exactly the three types of the seed', () => {
    expect(Object.keys(finalStatuses).sort()).toEqual(['ArchiveDeliveryRequestReply', 'ArchiveRestitution', 'ArchiveTransfer']);
  });
});
