/**
 * The Medona message directory end to end on real files and real SQLite: the rescan on start, the
 * watcher (messages written by another process), offline review, Fonds' own writes, the purge
 * (dry run, two instances at once, hostile ids), its HTTP route and `fonds purge`.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Service } from '../../src-main/service';
import { rescan } from '../../src-main/service/messages/indexer';
import { prettyPrint } from '../../src-main/service/messages/parse';
import { prettyPrinter } from '../../src-main/service/messages/parse-worker';
import { startHttpServer } from '../../src-main/transport/http';
import type { FondsEvent, Message } from '../../src-shared/api';
import { FondsError } from '../../src-shared/errors';
import { repoRoot, startService, tempDir, transportOf, waitFor } from '../helpers/service';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const RULES = `{
'Transferts' : {
'type' : ['ArchiveTransfer'],
'status' : ['processed', 'rejected', 'invalid'],
'delay' : 'P7D'
}
}`;

function messageDir(): string {
  const d = tempDir('fonds-messages-');
  cleanups.push(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

async function service(dir: string, overrides: Record<string, unknown> = {}): Promise<{ s: Service; dataDir: string; dispose: () => Promise<void> }> {
  const started = await startService({ messageDirectory: dir, removeMessageTask: RULES, messageLockTtlMs: 5000, ...overrides });
  cleanups.push(started.dispose);
  await started.service.idle();
  return { s: started.service, dataDir: started.dataDir, dispose: started.dispose };
}

interface Fixture {
  type?: string;
  date?: string;
  status?: string;
  ns?: string;
  attachments?: Record<string, string>;
  archive?: boolean;
}

/** A message as Maarch RM lays it out: <id>/<id>.xml, attachments, <id>.zip beside. */
function writeMessage(root: string, id: string, f: Fixture = {}): void {
  const folder = path.join(root, id);
  fs.mkdirSync(folder, { recursive: true });
  const type = f.type ?? 'ArchiveTransfer';
  fs.writeFileSync(
    path.join(folder, `${id}.xml`),
    `<?xml version="1.0"?><${type} xmlns="${f.ns ?? 'org:afnor:medona:1.0'}"><Date>${f.date ?? '2020-01-01T00:00:00Z'}</Date><MessageIdentifier>REF-${id}</MessageIdentifier>` +
      `<TransferringAgency><Identifier>SERVICE-A</Identifier></TransferringAgency><ArchivalAgency><Identifier>ARCHIVES</Identifier></ArchivalAgency></${type}>`,
  );
  for (const [name, content] of Object.entries(f.attachments ?? { 'document.pdf': 'pdf bytes' })) {
    fs.mkdirSync(path.dirname(path.join(folder, name)), { recursive: true });
    fs.writeFileSync(path.join(folder, name), content);
  }
  if (f.status) fs.writeFileSync(path.join(folder, `${id}.status`), JSON.stringify({ status: f.status, changedAt: '2020-01-02T00:00:00Z' }));
  if (f.archive ?? true) fs.writeFileSync(path.join(root, `${id}.zip`), 'zip bytes');
}

async function all(s: Service, filters: Record<string, unknown> = {}): Promise<Message[]> {
  return (await s.call('messages.list', { limit: 1000, ...filters })).items;
}
const ids = (ms: Message[]) => ms.map((m) => m.id).sort();

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'none';
  } catch (err) {
    return err instanceof FondsError ? err.code : `not a FondsError: ${String(err)}`;
  }
}

describe('indexing the message directory', () => {
  it('indexes what is there on start: type, status, date, reference, organisations, size', async () => {
    const dir = messageDir();
    writeMessage(dir, 'TR-1', { status: 'processed', date: '2021-03-04T05:06:07Z' });
    fs.mkdirSync(path.join(dir, 'JS-1'));
    fs.writeFileSync(
      path.join(dir, 'JS-1', 'JS-1.json'),
      JSON.stringify({ type: 'ArchiveDeliveryRequestReply', status: 'RECEIVED', date: '2022-01-01T00:00:00Z', reference: 'J', senderOrgRegNumber: 'AA', recipientOrgRegNumber: 'RQ' }),
    );
    const { s } = await service(dir);
    const tr = (await s.call('messages.get', { id: 'TR-1' })).message;
    expect(tr).toMatchObject({
      id: 'TR-1',
      state: 'ok',
      type: 'ArchiveTransfer',
      schema: 'medona',
      status: 'processed',
      statusSource: 'sidecar',
      date: '2021-03-04T05:06:07.000Z',
      dateSource: 'message',
      reference: 'REF-TR-1',
      sender: 'SERVICE-A',
      recipient: 'ARCHIVES',
      format: 'xml',
      file: 'TR-1/TR-1.xml',
      files: 4,
    });
    const xmlSize = fs.statSync(path.join(dir, 'TR-1', 'TR-1.xml')).size + fs.statSync(path.join(dir, 'TR-1', 'TR-1.status')).size;
    expect(tr.size).toBe(xmlSize + 'pdf bytes'.length + 'zip bytes'.length);
    expect((await s.call('messages.get', { id: 'JS-1' })).message).toMatchObject({ type: 'ArchiveDeliveryRequestReply', status: 'received', statusSource: 'message', sender: 'AA', recipient: 'RQ', format: 'json' });
  });

  it('indexes unparseable and unknown messages with the reason, and goes on', async () => {
    const dir = messageDir();
    fs.mkdirSync(path.join(dir, 'BROKEN'));
    fs.writeFileSync(path.join(dir, 'BROKEN', 'BROKEN.xml'), '<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Date>2020');
    writeMessage(dir, 'OTHER', { ns: 'urn:example:invoices' });
    fs.mkdirSync(path.join(dir, 'EMPTY'));
    fs.writeFileSync(path.join(dir, 'EMPTY', 'scan.pdf'), 'x');
    fs.writeFileSync(path.join(dir, 'BIN.xml'), Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x02]));
    writeMessage(dir, 'GOOD');
    const { s } = await service(dir);
    const byId = Object.fromEntries((await all(s)).map((m) => [m.id, m]));
    expect(Object.keys(byId).sort()).toEqual(['BIN', 'BROKEN', 'EMPTY', 'GOOD', 'OTHER']);
    expect(byId.BROKEN).toMatchObject({ state: 'unparseable' });
    expect(byId.BROKEN.reason).toMatch(/^not well-formed XML: /);
    expect(byId.OTHER).toMatchObject({ state: 'unknown', type: 'ArchiveTransfer' });
    expect(byId.OTHER.reason).toContain("is in namespace 'urn:example:invoices'");
    expect(byId.EMPTY).toMatchObject({ state: 'unparseable', reason: 'no message file: expected EMPTY/EMPTY.xml or EMPTY/EMPTY.json' });
    expect(byId.BIN.state).toBe('unparseable');
    expect(byId.GOOD.state).toBe('ok');
    const facets = await s.call('messages.facets', {});
    expect(facets.states).toEqual([
      { value: 'ok', count: 1 },
      { value: 'unknown', count: 1 },
      { value: 'unparseable', count: 3 },
    ]);
  });

  it('reconciles the index with changes other instances made while Fonds was closed', async () => {
    const dir = messageDir();
    writeMessage(dir, 'KEEP', { status: 'received' });
    writeMessage(dir, 'GONE');
    writeMessage(dir, 'EDITED');
    const first = await service(dir);
    expect(ids(await all(first.s))).toEqual(['EDITED', 'GONE', 'KEEP']);
    const dataDir = first.dataDir;
    await first.s.close();

    fs.rmSync(path.join(dir, 'GONE'), { recursive: true });
    fs.rmSync(path.join(dir, 'GONE.zip'));
    writeMessage(dir, 'NEW', { type: 'ArchiveRestitution', status: 'processed' });
    fs.writeFileSync(path.join(dir, 'EDITED', 'second.pdf'), 'more');
    fs.writeFileSync(path.join(dir, 'KEEP', 'KEEP.status'), JSON.stringify({ status: 'processed', changedAt: new Date().toISOString() }));

    const again = await startService({ dataDir, messageDirectory: dir, removeMessageTask: RULES });
    cleanups.push(again.dispose);
    await again.service.idle();
    const s = again.service;
    expect(ids(await all(s))).toEqual(['EDITED', 'KEEP', 'NEW']);
    expect((await s.call('messages.get', { id: 'KEEP' })).message.status).toBe('processed');
    expect((await s.call('messages.get', { id: 'EDITED' })).message.files).toBe(4);
    expect((await s.call('messages.get', { id: 'NEW' })).message.type).toBe('ArchiveRestitution');
    const gone = await s.call('messages.timeline', { id: 'GONE' });
    expect(gone.items.map((e) => e.type)).toEqual(['removed']);
    const keep = await s.call('messages.timeline', { id: 'KEEP' });
    expect(keep.items.find((e) => e.type === 'status')?.payload).toMatchObject({ from: 'received', to: 'processed', source: 'sidecar' });
  });

  it('starts without the directory when it cannot be reached, and says why', async () => {
    const { s } = await service('/dev/null/messages');
    expect((await s.call('messages.list', {})).total).toBe(0);
    expect((await s.call('messages.facets', {})).watching).toBe(false);
    const events = s.internals.store.db.prepare(`SELECT type, payload FROM events WHERE kind = 'message' AND object_id = '.directory' ORDER BY seq`).all() as Array<{ type: string; payload: string }>;
    expect(events.map((e) => e.type)).toEqual(['directory.unavailable', 'rescan.failed']);
    expect(JSON.parse(events[1].payload).message).toMatch(/ENOTDIR/);
    expect((await s.call('uploads.list', {})).total).toBe(0); // the rest of Fonds works
  });

  it('filters by type, status, date range and text, newest first, paged', async () => {
    const dir = messageDir();
    writeMessage(dir, 'A', { date: '2020-01-01T00:00:00Z', status: 'processed' });
    writeMessage(dir, 'B', { date: '2021-06-01T00:00:00Z', status: 'rejected' });
    writeMessage(dir, 'C', { date: '2022-01-01T00:00:00Z', type: 'ArchiveRestitution' });
    const { s } = await service(dir);
    expect((await all(s)).map((m) => m.id)).toEqual(['C', 'B', 'A']);
    expect(ids(await all(s, { type: 'ArchiveTransfer' }))).toEqual(['A', 'B']);
    expect(ids(await all(s, { status: 'REJECTED' }))).toEqual(['B']);
    expect(ids(await all(s, { status: 'none' }))).toEqual(['C']);
    expect(ids(await all(s, { from: '2021-01-01', to: '2021-12-31' }))).toEqual(['B']);
    expect(ids(await all(s, { to: '2020-01-01' }))).toEqual(['A']);
    expect(ids(await all(s, { q: 'ref-c' }))).toEqual(['C']);
    const page = await s.call('messages.list', { limit: 1, offset: 1 });
    expect(page).toMatchObject({ total: 3, offset: 1 });
    expect(page.items.map((m) => m.id)).toEqual(['B']);
  });

  it('dates a message by its Date only when it is an xs:date or xs:dateTime, and never purges it early', async () => {
    const dir = messageDir();
    writeMessage(dir, 'D7', { status: 'processed', date: '7' });
    writeMessage(dir, 'SPRINT', { status: 'processed', date: 'Sprint 12' });
    writeMessage(dir, 'LOCAL', { status: 'processed', date: '2020-01-01T10:00:00' });
    const { s } = await service(dir);
    for (const id of ['D7', 'SPRINT']) {
      const m = (await s.call('messages.get', { id })).message;
      expect(m, id).toMatchObject({ state: 'ok', dateSource: 'file' });
      expect(Date.now() - Date.parse(m.date!), id).toBeLessThan(3_600_000); // the file's time: today
      expect(m.reason, id).toMatch(/^Date '.+' is not readable as an xs:date or xs:dateTime/);
    }
    // without a zone: UTC, the same on every instance sharing the directory
    expect((await s.call('messages.get', { id: 'LOCAL' })).message).toMatchObject({ date: '2020-01-01T10:00:00.000Z', dateSource: 'message' });
    const report = await s.call('purge.run', { dryRun: false });
    expect(report.items.map((i) => i.id)).toEqual(['LOCAL']);
    expect(fs.existsSync(path.join(dir, 'D7'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'SPRINT'))).toBe(true);
  });

  it('leaves no row for a message deleted while a rescan had it read but not yet written', async () => {
    const dir = messageDir();
    const { s } = await service(dir, { messageWatch: false });
    const n = 1500;
    for (let i = 0; i < n; i++) writeMessage(dir, `G${String(i).padStart(4, '0')}`, { attachments: {}, archive: false });
    const store = s.internals.store;
    let deletedAt = -1;
    const summary = await rescan(dir, store, {
      trigger: 'test',
      // between slices, with some messages read but still waiting in a batch: another instance
      // deletes every message, and what the watcher does for the ones already written is done here
      progress: (done) => {
        if (deletedAt >= 0 || done === 0 || done % 500 === 0 || done === n) return;
        deletedAt = done;
        for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
        store.db.prepare('DELETE FROM messages').run();
      },
    });
    expect(deletedAt).toBeGreaterThan(0);
    expect((await s.call('messages.list', {})).total).toBe(0);
    expect(summary).toMatchObject({ total: 0, added: 0 });
  });

  it('shows the content pretty-printed and the attachments, beside archives included', async () => {
    const dir = messageDir();
    writeMessage(dir, 'V', { attachments: { 'a.pdf': 'aaa', 'annexes/b.txt': 'bb' } });
    const { s } = await service(dir);
    await s.call('messages.rescan', {});
    const d = await s.call('messages.get', { id: 'V' });
    expect(d.content.split('\n').slice(0, 3)).toEqual(['<?xml version="1.0"?>', '<ArchiveTransfer xmlns="org:afnor:medona:1.0">', '  <Date>2020-01-01T00:00:00Z</Date>']);
    expect(d.truncated).toBe(false);
    expect(d.attachments.map((a) => `${a.path}:${a.size}:${a.beside}`).sort()).toEqual(['V.zip:9:true', 'V/a.pdf:3:false', 'V/annexes/b.txt:2:false']);
  });

  it('shows a 1.5 MiB message pretty-printed by the worker, the same text as inline; a small one and a cut one are not sent to it', async () => {
    const dir = messageDir();
    const transferOf = (id: string, units: number) =>
      `<?xml version="1.0"?>\n<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Date>2020-01-01T00:00:00Z</Date><MessageIdentifier>REF-${id}</MessageIdentifier><DataObjectPackage>` +
      Array.from({ length: units }, (_, i) => `<BinaryDataObject id="o${i}"><!-- ${i} --><Uri>content/${i}.pdf</Uri><MessageDigest algorithm="SHA-256">${'cd'.repeat(32)}</MessageDigest><Description><![CDATA[a < b & ${i}]]></Description></BinaryDataObject>`).join('\n') +
      `</DataObjectPackage><TransferringAgency><Identifier>SERVICE-A</Identifier></TransferringAgency><ArchivalAgency><Identifier>ARCHIVES</Identifier></ArchivalAgency></ArchiveTransfer>`;
    const big = transferOf('BIG', 7600);
    const huge = transferOf('HUGE', 12_000);
    expect(big.length).toBeGreaterThan(1.5 * 1024 * 1024);
    expect(big.length).toBeLessThan(2 * 1024 * 1024);
    expect(huge.length).toBeGreaterThan(2 * 1024 * 1024);
    for (const [id, xml] of [['BIG', big], ['HUGE', huge]]) {
      fs.mkdirSync(path.join(dir, id));
      fs.writeFileSync(path.join(dir, id, `${id}.xml`), xml);
    }
    writeMessage(dir, 'V');
    const { s } = await service(dir);
    await s.call('messages.rescan', {});

    const before = prettyPrinter.answered;
    const d = await s.call('messages.get', { id: 'BIG' });
    expect(d.message).toMatchObject({ state: 'ok', reference: 'REF-BIG', sender: 'SERVICE-A', recipient: 'ARCHIVES' });
    expect(d.truncated).toBe(false);
    expect(d.content).toBe(prettyPrint(big, 'xml'));
    expect(d.content.split('\n').slice(0, 5)).toEqual([
      '<?xml version="1.0"?>',
      '<ArchiveTransfer xmlns="org:afnor:medona:1.0">',
      '  <Date>2020-01-01T00:00:00Z</Date>',
      '  <MessageIdentifier>REF-BIG</MessageIdentifier>',
      '  <DataObjectPackage>',
    ]);
    expect(prettyPrinter.answered).toBe(before + 1);

    // the indenting thread failing or late: the whole text as written, and why
    const why = 'the message is shown as written: the worker thread did not answer within 5000 ms and was stopped';
    const print = vi.spyOn(prettyPrinter, 'print').mockResolvedValueOnce({ text: big, unformatted: why });
    try {
      const plain = await s.call('messages.get', { id: 'BIG' });
      expect(plain).toMatchObject({ content: big, truncated: false, unformatted: why });
      expect(print).toHaveBeenCalledTimes(1);
    } finally {
      print.mockRestore();
    }
    expect(await s.call('messages.get', { id: 'BIG' })).not.toHaveProperty('unformatted');

    expect((await s.call('messages.get', { id: 'V' })).content).toContain('\n  <MessageIdentifier>REF-V</MessageIdentifier>');
    const cut = await s.call('messages.get', { id: 'HUGE' });
    expect(cut.truncated).toBe(true);
    expect(cut.content).toBe(huge.slice(0, 2 * 1024 * 1024));
    expect(prettyPrinter.answered).toBe(before + 2);
  });
});

describe('watching the directory', () => {
  /** Writes a message from another process, in slow chunks (a half-written file must not be read). */
  function writeFromAnotherProcess(root: string, id: string, type = 'ArchiveTransfer'): Promise<number | null> {
    const xml = `<?xml version="1.0"?><${type} xmlns="org:afnor:medona:1.0"><Date>2020-02-02T00:00:00Z</Date><MessageIdentifier>EXT-${id}</MessageIdentifier></${type}>`;
    const script = `
      const fs = require('fs'), path = require('path');
      const [root, id, xml] = process.argv.slice(1);
      fs.mkdirSync(path.join(root, id));
      const fd = fs.openSync(path.join(root, id, id + '.xml'), 'w');
      const parts = [xml.slice(0, 20), xml.slice(20, 60), xml.slice(60)];
      let i = 0;
      const next = () => { if (i < parts.length) { fs.writeSync(fd, parts[i++]); setTimeout(next, 80); } else { fs.closeSync(fd); fs.writeFileSync(path.join(root, id + '.zip'), 'zip'); } };
      next();`;
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-e', script, root, id, xml], { stdio: 'inherit' });
      child.on('error', reject);
      child.on('exit', resolve);
    });
  }

  it('picks up a message written by another process, only once it is whole', async () => {
    const dir = messageDir();
    const { s } = await service(dir);
    const events: FondsEvent[] = [];
    cleanups.push(s.subscribe((p) => p.channel === 'event' && p.event.kind === 'message' && events.push(p.event)));
    expect(await writeFromAnotherProcess(dir, 'EXT-1')).toBe(0);
    const m = await waitFor(
      () => s.call('messages.list', { q: 'EXT-1' }),
      (p) => p.items[0]?.files === 2,
      20_000,
    );
    expect(m.items[0]).toMatchObject({ id: 'EXT-1', state: 'ok', type: 'ArchiveTransfer', reference: 'EXT-EXT-1' });
    const states = events.filter((e) => e.objectId === 'EXT-1' && (e.type === 'indexed' || e.type === 'changed')).map((e) => e.payload.state);
    expect(states.length).toBeGreaterThan(0);
    expect(states).not.toContain('unparseable');
  });

  it('follows changes and removals made by another process, and survives garbage', async () => {
    const dir = messageDir();
    writeMessage(dir, 'W');
    const { s } = await service(dir);
    const run = (code: string) => expect(spawnSync(process.execPath, ['-e', code, dir]).status).toBe(0);
    run(`require('fs').writeFileSync(require('path').join(process.argv[1], 'W', 'W.status'), 'rejected')`);
    await waitFor(() => s.call('messages.get', { id: 'W' }), (d) => d.message.status === 'rejected', 20_000);
    run(`const fs=require('fs'),p=require('path');fs.mkdirSync(p.join(process.argv[1],'JUNK'));fs.writeFileSync(p.join(process.argv[1],'JUNK','JUNK.xml'), Buffer.from([0,1,2,3,255]))`);
    await waitFor(() => all(s), (ms) => ms.some((m) => m.id === 'JUNK' && m.state === 'unparseable'), 20_000);
    run(`require('fs').rmSync(require('path').join(process.argv[1], 'W'), {recursive: true}); require('fs').rmSync(require('path').join(process.argv[1], 'W.zip'))`);
    await waitFor(() => all(s), (ms) => !ms.some((m) => m.id === 'W'), 20_000);
    // still watching after the garbage
    expect(await writeFromAnotherProcess(dir, 'AFTER')).toBe(0);
    await waitFor(() => all(s), (ms) => ms.some((m) => m.id === 'AFTER' && m.state === 'ok'), 20_000);
  });
});

describe('reviewing messages offline', () => {
  it("sets a status in the index and in the sidecar, where another instance reads it", async () => {
    const dir = messageDir();
    writeMessage(dir, 'R');
    const a = await service(dir);
    const b = await service(dir);
    const m = await a.s.call('messages.setStatus', { id: 'R', status: 'processed' });
    expect(m).toMatchObject({ status: 'processed', statusSource: 'review' });
    const sidecar = JSON.parse(fs.readFileSync(path.join(dir, 'R', 'R.status'), 'utf8'));
    expect(sidecar).toMatchObject({ status: 'processed' });
    expect(sidecar.changedBy).toMatch(/^Fonds \(data .+\) on .+ via internal$/);
    await waitFor(() => b.s.call('messages.get', { id: 'R' }), (d) => d.message.status === 'processed', 20_000);
    const tl = await a.s.call('messages.timeline', { id: 'R' });
    expect(tl.items.filter((e) => e.type === 'status').map((e) => e.payload)).toEqual([{ from: null, to: 'processed', source: 'review', by: 'internal' }]);
    // a rescan does not undo the review
    await a.s.call('messages.rescan', {});
    expect((await a.s.call('messages.get', { id: 'R' })).message.status).toBe('processed');
    expect(await codeOf(a.s.call('messages.setStatus', { id: 'R', status: 'finished' as never }))).toBe('INVALID_INPUT');
    expect(await codeOf(a.s.call('messages.setStatus', { id: 'NOPE', status: 'processed' }))).toBe('NOT_FOUND');
  });

  it('lists, edits, cancels, retries and sends now the outbox items waiting to go', async () => {
    const { s } = await service(messageDir());
    const id = s.internals.store.transact((tx) => tx.outbox({ channel: 'amqp', destination: 'regards.dissemination', headers: { h: 1 }, body: '{"a":1}' }));
    expect(await s.call('outbox.get', { id })).toMatchObject({ id, status: 'pending', body: '{"a":1}' });
    expect(await s.call('outbox.edit', { id, body: '{"a":2}', headers: { h: 2 } })).toMatchObject({ body: '{"a":2}', headers: { h: 2 } });
    expect((await s.call('outbox.cancel', { id })).status).toBe('cancelled');
    expect(await codeOf(s.call('outbox.cancel', { id }))).toBe('CONFLICT');
    expect((await s.call('outbox.retry', { id })).status).toBe('pending');
    expect((await s.call('outbox.cancel', { id })).status).toBe('cancelled');
    // the broker comes back: a cancelled message stays; "send now" sends it
    const sent: string[] = [];
    s.internals.outbox.attach('amqp', transportOf(async (item) => void sent.push(item.body)));
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toEqual([]);
    await s.call('outbox.sendNow', { id });
    await waitFor(() => s.call('outbox.get', { id }), (o) => o.status === 'sent', 10_000);
    expect(sent).toEqual(['{"a":2}']);
    expect(await codeOf(s.call('outbox.edit', { id, body: 'late' }))).toBe('CONFLICT');
    expect(await codeOf(s.call('outbox.get', { id: 999 }))).toBe('NOT_FOUND');
  });
});

describe("writing Fonds' own messages", () => {
  it('writes <id>/<id>.xml with its attachments and status, indexed at once', async () => {
    const dir = messageDir();
    const { s } = await service(dir);
    const m = await s.call('messages.write', {
      id: 'FONDS-OUT-1',
      type: 'ArchiveDeliveryRequestReply',
      reference: 'OUT-1',
      sender: 'ARCHIVES',
      recipient: 'REQUESTER',
      date: '2024-01-01T00:00:00Z',
      status: 'received',
      attachments: [
        { name: 'reply.pdf', content: 'pdf' },
        { name: 'data/bin', content: Buffer.from([1, 2, 3]).toString('base64'), encoding: 'base64' },
      ],
    });
    expect(m).toMatchObject({ id: 'FONDS-OUT-1', state: 'ok', type: 'ArchiveDeliveryRequestReply', status: 'received', reference: 'OUT-1', sender: 'ARCHIVES', recipient: 'REQUESTER', files: 4 });
    expect(fs.readdirSync(path.join(dir, 'FONDS-OUT-1')).sort()).toEqual(['FONDS-OUT-1.status', 'FONDS-OUT-1.xml', 'data', 'reply.pdf']);
    expect([...fs.readFileSync(path.join(dir, 'FONDS-OUT-1', 'data', 'bin'))]).toEqual([1, 2, 3]);
    expect(fs.readFileSync(path.join(dir, 'FONDS-OUT-1', 'FONDS-OUT-1.xml'), 'utf8')).toContain('<ArchiveDeliveryRequestReply xmlns="org:afnor:medona:1.0">');
    expect(fs.readdirSync(dir).filter((n) => n.startsWith('.'))).toEqual([]); // no lock or temp left
    expect(await codeOf(s.call('messages.write', { id: 'FONDS-OUT-1', type: 'ArchiveTransfer' }))).toBe('CONFLICT');
    const json = await s.call('messages.write', { type: 'ArchiveTransfer', format: 'json' });
    expect(json.id).toMatch(/^FONDS-[0-9a-f-]{36}$/);
    expect(json.file).toBe(`${json.id}/${json.id}.json`);
    expect(await codeOf(s.call('messages.write', { type: 'ArchiveTransfer', content: '<nope' }))).toBe('INVALID_INPUT');
  });
});

describe('purging the directory', () => {
  it('lists in a dry run what it would delete, deleting nothing', async () => {
    const dir = messageDir();
    writeMessage(dir, 'OLD-DONE', { status: 'processed' });
    writeMessage(dir, 'OLD-RECEIVED', { status: 'received' });
    writeMessage(dir, 'YOUNG-DONE', { status: 'processed', date: new Date(Date.now() - 3 * 86_400_000).toISOString() });
    writeMessage(dir, 'OTHER-TYPE', { status: 'processed', type: 'ArchiveRestitution' });
    writeMessage(dir, 'NO-STATUS');
    const { s } = await service(dir);
    const before = fs.readdirSync(dir).sort();
    const report = await s.call('purge.run', { dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(report.items.map((i) => [i.id, i.task, i.deleted])).toEqual([['OLD-DONE', 'Transferts', false]]);
    expect(report.items[0].reason).toMatch(/^ArchiveTransfer processed dated 2020-01-01T00:00:00\.000Z, older than P7D \(before .+\): task 'Transferts'$/);
    expect(report.totals).toEqual({ messages: 1, bytes: report.items[0].bytes, files: 4, skipped: 0 });
    expect(report.tasks).toEqual([expect.objectContaining({ name: 'Transferts', delay: 'P7D', messages: 1 })]);
    expect(fs.readdirSync(dir).sort()).toEqual(before);
    expect(await s.call('purge.run', {})).toMatchObject({ dryRun: true }); // the default deletes nothing
    expect(fs.readdirSync(dir).sort()).toEqual(before);
  });

  it('deletes the folder and <id>.* files of each selected message, reports and records it', async () => {
    const dir = messageDir();
    writeMessage(dir, 'P1', { status: 'processed' });
    writeMessage(dir, 'P1.2', { status: 'received' }); // a different message whose name starts with P1.
    fs.writeFileSync(path.join(dir, 'P1.sig'), 'signature');
    writeMessage(dir, 'P2', { status: 'rejected' });
    writeMessage(dir, 'KEEP', { status: 'received' });
    const { s } = await service(dir);
    const expectedBytes = (await s.call('messages.get', { id: 'P1' })).message.size + (await s.call('messages.get', { id: 'P2' })).message.size;
    const report = await s.call('purge.run', { dryRun: false });
    expect(report.items.map((i) => [i.id, i.deleted]).sort()).toEqual([
      ['P1', true],
      ['P2', true],
    ]);
    expect(report.totals.bytes).toBe(expectedBytes);
    expect(fs.readdirSync(dir).sort()).toEqual(['KEEP', 'KEEP.zip', 'P1.2', 'P1.2.zip']);
    expect(ids(await all(s))).toEqual(['KEEP', 'P1.2']);
    const tl = await s.call('messages.timeline', { id: 'P1' });
    expect(tl.items[0]).toMatchObject({ type: 'purged', payload: { task: 'Transferts', delay: 'P7D', status: 'processed', bytes: report.items.find((i) => i.id === 'P1')!.bytes } });
  });

  it('deletes only the confirmed ids, and refuses a "now" in the future', async () => {
    const dir = messageDir();
    writeMessage(dir, 'C1', { status: 'processed' });
    writeMessage(dir, 'C2', { status: 'processed' });
    const { s } = await service(dir);
    const report = await s.call('purge.run', { dryRun: false, ids: ['C2'] });
    expect(report.items.map((i) => i.id)).toEqual(['C2']);
    expect(fs.existsSync(path.join(dir, 'C1'))).toBe(true);
    expect(await codeOf(s.call('purge.run', { dryRun: false, now: '2999-01-01T00:00:00Z' }))).toBe('INVALID_INPUT');
    expect(fs.existsSync(path.join(dir, 'C1'))).toBe(true);
  });

  it('refuses to purge with invalid rules, naming each task and field, deleting nothing', async () => {
    const dir = messageDir();
    writeMessage(dir, 'X', { status: 'processed' });
    const { s } = await service(dir, { removeMessageTask: `{'Transferts': {'type': ['ArchiveTransfer'], 'status': ['processed', 'received'], 'delay': 'P7D'}}` });
    const rules = await s.call('purge.rules', {});
    expect(rules.errors.map((e) => `${e.task}/${e.field}`)).toEqual(['Transferts/status']);
    const err = await s.call('purge.run', { dryRun: false }).catch((e: FondsError) => e);
    expect(err).toBeInstanceOf(FondsError);
    expect((err as FondsError).code).toBe('CONFIG_INVALID');
    expect((err as FondsError).message).toContain("task 'Transferts', status: 'received' is not a final status of ArchiveTransfer");
    expect(fs.existsSync(path.join(dir, 'X'))).toBe(true);
    // trying a change before saving it
    expect((await s.call('purge.rules', { text: RULES })).errors).toEqual([]);
  });

  it('with two instances sharing the directory and purging at once, deletes each message once', async () => {
    const dir = messageDir();
    const n = 40;
    for (let i = 0; i < n; i++) writeMessage(dir, `M-${String(i).padStart(3, '0')}`, { status: i % 4 === 3 ? 'received' : 'processed' });
    const a = await service(dir);
    const b = await service(dir);
    const [ra, rb] = await Promise.all([a.s.call('purge.run', { dryRun: false }), b.s.call('purge.run', { dryRun: false })]);
    const deletedA = ra.items.filter((i) => i.deleted).map((i) => i.id);
    const deletedB = rb.items.filter((i) => i.deleted).map((i) => i.id);
    expect(deletedA.filter((x) => deletedB.includes(x))).toEqual([]);
    expect([...deletedA, ...deletedB].sort()).toEqual(
      Array.from({ length: n }, (_, i) => i)
        .filter((i) => i % 4 !== 3)
        .map((i) => `M-${String(i).padStart(3, '0')}`),
    );
    expect(ra.totals.messages + rb.totals.messages).toBe(30);
    expect(fs.readdirSync(dir).filter((x) => !x.endsWith('.zip')).length).toBe(10);
    expect(fs.existsSync(path.join(dir, '.fonds.lock'))).toBe(false);
  });

  it('refuses hostile message ids and never touches anything outside the directory', async () => {
    const dir = messageDir();
    const outside = tempDir('fonds-outside-');
    cleanups.push(() => fs.rmSync(outside, { recursive: true, force: true }));
    writeMessage(outside, 'VICTIM', { status: 'processed' });
    fs.symlinkSync(path.join(outside, 'VICTIM'), path.join(dir, 'LINK'));
    writeMessage(dir, 'OK', { status: 'processed' });
    const { s } = await service(dir);
    for (const bad of ['..', '../VICTIM', '/etc', path.join(outside, 'VICTIM'), 'a/b', '.fonds.lock']) {
      expect(await codeOf(s.call('messages.get', { id: bad })), bad).toBe('PATH_INVALID');
      expect(await codeOf(s.call('messages.setStatus', { id: bad, status: 'processed' })), bad).toBe('PATH_INVALID');
      expect(await codeOf(s.call('messages.write', { id: bad, type: 'ArchiveTransfer' })), bad).toBe('PATH_INVALID');
      expect(await codeOf(s.call('purge.run', { dryRun: false, ids: [bad] })), bad).toBe('PATH_INVALID');
    }
    for (const bad of ['a\0b', '\0']) {
      expect(await codeOf(s.call('messages.get', { id: bad }))).toBe('INVALID_INPUT');
      expect(await codeOf(s.call('purge.run', { dryRun: false, ids: [bad] }))).toBe('INVALID_INPUT');
    }
    expect(await codeOf(s.call('messages.write', { type: 'ArchiveTransfer', attachments: [{ name: '../escape.txt', content: 'x' }] }))).toBe('PATH_INVALID');
    expect(await codeOf(s.call('messages.write', { type: 'ArchiveTransfer', attachments: [{ name: '/tmp/escape.txt', content: 'x' }] }))).toBe('PATH_INVALID');
    const link = (await all(s)).find((m) => m.id === 'LINK');
    expect(link?.state).toBe('unparseable'); // a link is never followed, so never read nor purged
    const report = await s.call('purge.run', { dryRun: false });
    expect(report.items.map((i) => i.id)).toEqual(['OK']);
    expect(fs.readdirSync(path.join(outside, 'VICTIM')).sort()).toEqual(['VICTIM.status', 'VICTIM.xml', 'document.pdf']);
    expect(fs.lstatSync(path.join(dir, 'LINK')).isSymbolicLink()).toBe(true);
  });

  it('never reads through a link, nor purges it: a message whose file or sidecar is a link is unparseable', async () => {
    const dir = messageDir();
    const outside = tempDir('fonds-outside-');
    cleanups.push(() => fs.rmSync(outside, { recursive: true, force: true }));
    const secret = path.join(outside, 'secret.xml');
    fs.writeFileSync(secret, `<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Date>2020-01-01T00:00:00Z</Date><Status>processed</Status><MessageIdentifier>SECRET-REF</MessageIdentifier></ArchiveTransfer>`);
    fs.writeFileSync(path.join(outside, 'status'), 'processed');
    fs.writeFileSync(path.join(outside, 'archive.zip'), 'outside archive');
    fs.symlinkSync(secret, path.join(dir, 'LINK.xml')); // a folder-less message that is a link
    writeMessage(dir, 'SIDE'); // its sidecar is a link saying 'processed'
    fs.symlinkSync(path.join(outside, 'status'), path.join(dir, 'SIDE', 'SIDE.status'));
    writeMessage(dir, 'INNER', { status: 'processed' }); // its message file is a link
    fs.rmSync(path.join(dir, 'INNER', 'INNER.xml'));
    fs.symlinkSync(secret, path.join(dir, 'INNER', 'INNER.xml'));
    writeMessage(dir, 'ZIPLINK', { status: 'processed', archive: false }); // a real message with a link beside
    fs.symlinkSync(path.join(outside, 'archive.zip'), path.join(dir, 'ZIPLINK.zip'));
    const { s } = await service(dir);

    const link = await s.call('messages.get', { id: 'LINK' });
    expect(link.message).toMatchObject({ state: 'unparseable', reason: 'LINK.xml is a symbolic link: links are never followed, so this message is not read and never purged' });
    expect(link.message.reference).toBeUndefined();
    expect(link.content).toBe('');
    expect((await s.call('messages.get', { id: 'SIDE' })).message).toMatchObject({ state: 'unparseable', reason: expect.stringContaining('SIDE/SIDE.status is a symbolic link') });
    expect((await s.call('messages.get', { id: 'SIDE' })).message.status).toBeUndefined();
    const inner = await s.call('messages.get', { id: 'INNER' });
    expect(inner.message).toMatchObject({ state: 'unparseable', reason: expect.stringContaining('INNER/INNER.xml is a symbolic link') });
    expect(inner.content).toBe('');
    // a review is kept in the index; the link in the sidecar's place is not replaced
    expect(await s.call('messages.setStatus', { id: 'SIDE', status: 'processed' })).toMatchObject({ state: 'unparseable', status: 'processed' });

    const report = await s.call('purge.run', { dryRun: false });
    expect(report.items.map((i) => [i.id, i.deleted])).toEqual([['ZIPLINK', true]]);
    for (const name of ['LINK.xml', 'ZIPLINK.zip', 'SIDE/SIDE.status', 'INNER/INNER.xml']) expect(fs.lstatSync(path.join(dir, name)).isSymbolicLink(), name).toBe(true);
    expect(fs.existsSync(path.join(dir, 'ZIPLINK'))).toBe(false);
    expect(fs.readdirSync(outside).sort()).toEqual(['archive.zip', 'secret.xml', 'status']);
    const purged = (await s.call('messages.timeline', { id: 'ZIPLINK' })).items.find((e) => e.type === 'purged');
    expect(purged?.payload.kept).toEqual(['ZIPLINK.zip: a symbolic link: never deleted']);
  });

  it("does not delete a top-level file that belongs to another message since its folder appeared", async () => {
    const dir = messageDir();
    writeMessage(dir, 'MSG-1', { status: 'processed', archive: false });
    fs.writeFileSync(path.join(dir, 'MSG-1.zip'), 'archive of MSG-1');
    fs.writeFileSync(path.join(dir, 'MSG-1.2.zip'), 'archive of MSG-1.2, arrived before its folder');
    const { s } = await service(dir, { messageWatch: false });
    expect((await s.call('messages.get', { id: 'MSG-1' })).attachments.map((a) => a.path).sort()).toEqual(['MSG-1.2.zip', 'MSG-1.zip', 'MSG-1/document.pdf']);
    // the folder of MSG-1.2 appears, a live transfer; the index has not seen it yet
    writeMessage(dir, 'MSG-1.2', { status: 'received', date: new Date().toISOString(), archive: false });
    const report = await s.call('purge.run', { dryRun: false });
    expect(report.items.map((i) => [i.id, i.deleted])).toEqual([['MSG-1', true]]);
    expect(fs.readFileSync(path.join(dir, 'MSG-1.2.zip'), 'utf8')).toBe('archive of MSG-1.2, arrived before its folder');
    expect(fs.existsSync(path.join(dir, 'MSG-1.zip'))).toBe(false);
    expect(fs.readdirSync(dir).sort()).toEqual(['MSG-1.2', 'MSG-1.2.zip']);
    await s.call('messages.rescan', {});
    expect((await s.call('messages.get', { id: 'MSG-1.2' })).attachments.map((a) => a.path).sort()).toEqual(['MSG-1.2.zip', 'MSG-1.2/document.pdf']);
  });

  it('gives a top-level file to the message whose folder appears, as the watcher sees it', async () => {
    const dir = messageDir();
    writeMessage(dir, 'MSG-1', { status: 'processed' });
    fs.writeFileSync(path.join(dir, 'MSG-1.2.zip'), 'archive of MSG-1.2');
    const { s } = await service(dir);
    expect((await s.call('messages.get', { id: 'MSG-1' })).message.files).toBe(5);
    writeMessage(dir, 'MSG-1.2', { status: 'received', date: new Date().toISOString(), archive: false });
    await waitFor(() => s.call('messages.get', { id: 'MSG-1.2' }).catch(() => undefined), (d) => d?.message.files === 4, 20_000);
    await waitFor(() => s.call('messages.get', { id: 'MSG-1' }), (d) => d.message.files === 4, 20_000);
    expect((await s.call('messages.get', { id: 'MSG-1' })).attachments.map((a) => a.path).sort()).toEqual(['MSG-1.zip', 'MSG-1/document.pdf']);
    // and back to MSG-1 when that folder goes
    fs.rmSync(path.join(dir, 'MSG-1.2'), { recursive: true });
    await waitFor(() => s.call('messages.get', { id: 'MSG-1' }), (d) => d.message.files === 5, 20_000);
    expect(ids(await all(s))).toEqual(['MSG-1']);
  });

  it('deletes on confirmation only what the dry run selected, listed or not, each checked again', async () => {
    const dir = messageDir();
    for (const id of ['C1', 'C2', 'C3', 'C4']) writeMessage(dir, id, { status: 'processed' });
    const { s } = await service(dir, { messageWatch: false });
    const preview = await s.call('purge.run', { dryRun: true, limit: 2 });
    expect(preview).toMatchObject({ totals: { messages: 4 }, itemsOmitted: 2 });
    expect(Date.parse(preview.confirmUntil!) - Date.now()).toBeGreaterThan(50 * 60_000);
    // since the preview: a new message matches, and one of the selection is no longer final
    writeMessage(dir, 'LATE', { status: 'processed' });
    fs.writeFileSync(path.join(dir, 'C4', 'C4.status'), JSON.stringify({ status: 'received', changedAt: new Date().toISOString() }));
    await s.call('messages.rescan', {});

    expect(await codeOf(s.call('purge.run', { dryRun: false, confirm: preview.runId, ids: ['C1'] }))).toBe('INVALID_INPUT');
    expect(await codeOf(s.call('purge.run', { dryRun: true, confirm: preview.runId }))).toBe('INVALID_INPUT');
    const report = await s.call('purge.run', { dryRun: false, confirm: preview.runId });
    expect(report).toMatchObject({ confirmed: preview.runId, now: preview.now });
    expect(report.items.filter((i) => i.deleted).map((i) => i.id)).toEqual(['C1', 'C2', 'C3']);
    expect(report.items.find((i) => i.id === 'C4')?.skipped).toBe('no longer selected by any task (now ArchiveTransfer received, dated 2020-01-01T00:00:00.000Z)');
    expect(fs.existsSync(path.join(dir, 'LATE'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'C4'))).toBe(true);
    // once only
    expect(await codeOf(s.call('purge.run', { dryRun: false, confirm: preview.runId }))).toBe('NOT_FOUND');
    expect(await codeOf(s.call('purge.run', { dryRun: false, confirm: 'not-a-dry-run' }))).toBe('NOT_FOUND');
    expect(fs.existsSync(path.join(dir, 'LATE'))).toBe(true);
    const finished = s.internals.store.db.prepare(`SELECT payload FROM events WHERE type = 'purge.finished'`).pluck().get() as string;
    expect(JSON.parse(finished)).toMatchObject({ confirmed: preview.runId, totals: { messages: 3, skipped: 1 } });
  });

  it('answers DELETE /medona/message/MessageDirectoryPurge, dry run with ?dryRun=true, behind the token', async () => {
    const dir = messageDir();
    writeMessage(dir, 'H1', { status: 'invalid' });
    const { s } = await service(dir);
    const srv = await startHttpServer({ service: s, host: '127.0.0.1', port: 0, token: s.token, maxBodyBytes: 1 << 20 });
    cleanups.push(() => srv.close());
    const url = `${srv.url}/medona/message/MessageDirectoryPurge`;
    const auth = { authorization: `Bearer ${s.token}` };
    expect((await fetch(url, { method: 'DELETE' })).status).toBe(401);
    const dry = await fetch(`${url}?dryRun=true`, { method: 'DELETE', headers: auth });
    expect(dry.status).toBe(200);
    const dryReport = await dry.json();
    expect(dryReport).toMatchObject({ dryRun: true, trigger: 'http', totals: { messages: 1 } });
    expect(fs.existsSync(path.join(dir, 'H1'))).toBe(true);
    expect((await fetch(`${url}?dryRun=maybe`, { method: 'DELETE', headers: auth })).status).toBe(400);
    const real = await fetch(url, { method: 'DELETE', headers: auth });
    expect(real.status).toBe(200);
    expect(await real.json()).toMatchObject({ dryRun: false, items: [{ id: 'H1', deleted: true, task: 'Transferts' }] });
    expect(fs.existsSync(path.join(dir, 'H1'))).toBe(false);
  });

  it('runs on a schedule when purgeSchedule is set', async () => {
    const dir = messageDir();
    const { s } = await service(dir, { purgeSchedule: 'PT1H' });
    const rules = await s.call('purge.rules', {});
    expect(rules.schedule).toBe('PT1H');
    const next = Date.parse(rules.nextRun ?? '');
    expect(next - Date.now()).toBeGreaterThan(3_500_000);
    expect(next - Date.now()).toBeLessThanOrEqual(3_600_000);
  });
});

describe('fonds purge', () => {
  function fonds(env: Record<string, string>, ...args: string[]) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src-main/cli/index.ts'), ...args], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, ...env },
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  it('--dry-run prints one line per message and the totals, deleting nothing', () => {
    const dir = messageDir();
    const dataDir = messageDir();
    writeMessage(dir, 'CLI-1', { status: 'processed', attachments: {}, archive: false });
    writeMessage(dir, 'CLI-2', { status: 'received' });
    const size = fs.statSync(path.join(dir, 'CLI-1', 'CLI-1.xml')).size + fs.statSync(path.join(dir, 'CLI-1', 'CLI-1.status')).size;
    const env = { FONDS_MESSAGE_DIRECTORY: dir, FONDS_REMOVE_MESSAGE_TASK: RULES };
    const r = fonds(env, 'purge', '--dry-run', '--data-dir', dataDir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.split('\n')).toEqual([
      `WOULD-DELETE CLI-1 ArchiveTransfer processed Transferts ${size}`,
      expect.stringMatching(/^task Transferts: delay P7D, messages dated before \S+: 1 messages, \d+ bytes$/),
      `Dry run: 1 messages, ${size} bytes would be freed; nothing was deleted.`,
      '',
    ]);
    expect(fs.existsSync(path.join(dir, 'CLI-1'))).toBe(true);
    const json = fonds(env, 'purge', '--dry-run', '--json', '--data-dir', dataDir);
    expect(JSON.parse(json.out)).toMatchObject({ dryRun: true, trigger: 'cli', totals: { messages: 1, bytes: size } });
    const real = fonds(env, 'purge', '--data-dir', dataDir);
    expect(real.code).toBe(0);
    expect(real.out).toContain(`DELETED CLI-1 ArchiveTransfer processed Transferts ${size}`);
    expect(real.out).toContain(`Purged 1 messages, ${size} bytes freed.`);
    expect(fs.existsSync(path.join(dir, 'CLI-1'))).toBe(false);
  });

  it('exits 2 naming each problem when the rules are invalid', () => {
    const dir = messageDir();
    writeMessage(dir, 'CLI-3', { status: 'processed' });
    const r = fonds({ FONDS_MESSAGE_DIRECTORY: dir, FONDS_REMOVE_MESSAGE_TASK: `{'9x': {'type': ['ArchiveTransfer'], 'status': ['sent'], 'delay': 'P7D'}}` }, 'purge', '--data-dir', messageDir());
    expect(r.code).toBe(2);
    expect(r.err).toContain("ERROR removeMessageTask 9x name: task '9x', name: a task name starts with a letter");
    expect(r.err).toContain("ERROR removeMessageTask 9x status: task '9x', status: 'sent' is not a final status of ArchiveTransfer");
    expect(fs.existsSync(path.join(dir, 'CLI-3'))).toBe(true);
  });
});
