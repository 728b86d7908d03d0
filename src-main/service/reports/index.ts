/**
 * Dissemination reports, from the event log alone: preview, export to a file (atomically), and a
 * stream for the HTTP download and the CLI. Owns no table; reads `events` (kind `dissemination`,
 * the contract of src-shared/domain/dissemination.ts) through fold.ts.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  reportFileName,
  reportStreamSchema,
  type ReportExport,
  type ReportFormat,
  type ReportPreview,
  type ReportStream,
} from '../../../src-shared/domain/report';
import { FondsError } from '../../../src-shared/errors';
import type { Capability, Deps } from '../capability';
import type { DB } from '../db/database';
import { writeCsv } from './csv';
import { foldDisseminations, reportRows, summarize } from './fold';
import { writeJson } from './json';
import { writePdf } from './pdf';
import { Sink } from './sink';

export interface WriteOutcome {
  rows: number;
  bytes: number;
  pages?: number;
  generatedAt: string;
}

export interface WriteOptions {
  signal?: AbortSignal;
  /** rows written so far, of `total` */
  onProgress?: (rows: number, total: number, bytes: number) => void;
  /** called once the first pass is done, before a byte is written (HTTP headers, for instance) */
  onReady?: (info: { total: number; generatedAt: string }) => void;
}

/**
 * Writes a report to `out` (which it does not end): first pass over the events, then the rows
 * streamed through the format's writer with back-pressure.
 */
export async function writeReport(db: DB, request: ReportStream, out: Writable, opts: WriteOptions = {}): Promise<WriteOutcome> {
  const fold = await foldDisseminations(db, request.filters, { signal: opts.signal });
  const summary = summarize(fold);
  opts.onReady?.({ total: fold.total, generatedAt: fold.generatedAt });
  const sink = new Sink(out);
  const batches = reportRows(db, fold, { signal: opts.signal });
  const onRows = (n: number) => opts.onProgress?.(n, fold.total, sink.bytes);
  const head = { generatedAt: fold.generatedAt, filters: request.filters, summary };
  let rows: number;
  let pages: number | undefined;
  if (request.format === 'csv') rows = await writeCsv(batches, sink, { bom: request.bom, onRows });
  else if (request.format === 'json') rows = await writeJson(batches, sink, head, { onRows });
  else ({ rows, pages } = await writePdf(batches, sink, { ...head, lang: request.lang }, { onRows }));
  await sink.drain();
  return { rows, bytes: sink.bytes, pages, generatedAt: fold.generatedAt };
}

/**
 * Writes a report to `target` atomically: into a temporary file beside it, flushed to disk, then
 * renamed; a failure or a cancel leaves no partial file and keeps what was there.
 */
export async function exportReport(
  db: DB,
  request: ReportStream & { path: string; overwrite?: boolean },
  opts: WriteOptions = {},
): Promise<ReportExport> {
  const started = Date.now();
  const target = request.path;
  if (!path.isAbsolute(target)) throw new FondsError('PATH_INVALID', `path: '${target}' must be an absolute path on the machine that runs Fonds.`);
  if (target.endsWith(path.sep) || target.endsWith('/')) throw new FondsError('PATH_INVALID', `path: '${target}' names a folder; give a file name.`);
  const dir = path.dirname(target);
  const existing = await fs.promises.stat(target).catch(() => undefined);
  if (existing?.isDirectory()) throw new FondsError('PATH_INVALID', `path: '${target}' is a folder; give a file name.`);
  if (existing && !request.overwrite) throw new FondsError('CONFLICT', `path: '${target}' exists; choose another name or allow overwriting it.`, { path: target });
  await fs.promises.mkdir(dir, { recursive: true });
  const temp = path.join(dir, `.${path.basename(target)}.fonds-part-${randomBytes(4).toString('hex')}`);
  const out = fs.createWriteStream(temp, { flags: 'wx' });
  const opened = new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', reject);
  });
  try {
    await opened;
    const outcome = await writeReport(db, request, out, opts);
    out.end();
    await finished(out);
    const fh = await fs.promises.open(temp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(temp, target);
    return {
      path: target,
      format: request.format,
      rows: outcome.rows,
      bytes: outcome.bytes,
      ...(outcome.pages ? { pages: outcome.pages } : {}),
      generatedAt: outcome.generatedAt,
      durationMs: Date.now() - started,
    };
  } catch (err) {
    out.destroy();
    await fs.promises.rm(temp, { force: true });
    throw err;
  }
}

/** Where the UI offers to save a report: ~/Documents/Fonds reports when there is a Documents folder, else <dataDir>/reports. */
export function reportsFolder(dataDir: string): string {
  const documents = path.join(os.homedir(), 'Documents');
  return fs.existsSync(documents) ? path.join(documents, 'Fonds reports') : path.join(dataDir, 'reports');
}

export interface Reports extends Capability {
  /** streams a report (HTTP download); `input` is parsed with reportStreamSchema */
  write(input: unknown, out: Writable, opts?: WriteOptions): Promise<WriteOutcome>;
}

export function createReports(deps: Deps): Reports {
  const { store, config } = deps;
  const db = store.db;

  return {
    handlers: {
      'reports.preview': async ({ filters, limit }) => {
        const fold = await foldDisseminations(db, filters);
        const summary = summarize(fold);
        const rows = [];
        if (limit > 0) for await (const batch of reportRows(db, fold, { limit })) rows.push(...batch);
        return { generatedAt: fold.generatedAt, filters, summary, rows } satisfies ReportPreview;
      },
      'reports.export': async (input) => {
        const exportId = input.exportId ?? randomBytes(6).toString('hex');
        let last = 0;
        const progress = (rows: number, total: number, bytes: number) => {
          const now = Date.now();
          if (now - last < 200 && rows < total) return;
          last = now;
          store.progress({ kind: 'report', objectId: exportId, progress: { files: rows, totalFiles: total, bytes } });
        };
        return exportReport(db, input, { onProgress: progress });
      },
      'reports.suggestPath': ({ filters, format }) => {
        const dir = reportsFolder(config.dataDir);
        return { dir, path: path.join(dir, reportFileName(filters, format as ReportFormat)) };
      },
    },
    write: async (input, out, opts) => {
      const parsed = reportStreamSchema.safeParse(input);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(input)', message: i.message }));
        throw new FondsError('INVALID_INPUT', `report: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
      }
      return writeReport(db, parsed.data, out, opts);
    },
  };
}
