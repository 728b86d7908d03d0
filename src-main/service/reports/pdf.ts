/**
 * The PDF report with pdfkit: a first page (title, filters, summary, by recipient, a chart of
 * disseminations over time), then the detail table, its header repeated on every page, every page
 * numbered "Page n of N" and stamped with the generation time.
 *
 * Streaming: rows have a fixed height (long values wrap to two lines, then end with "…"), so the
 * page count N is known before the first row is drawn and each page goes out as soon as the next
 * one starts (no page buffering). Fonts: DejaVu Sans Condensed from resources/fonts, embedded as
 * subsets, so French and Norwegian names (é, è, ç, æ, ø, å…) render and extract as text; what
 * they have no glyph for shows as MISSING_GLYPH.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import PDFDocument from 'pdfkit';
import type { DisseminationStatus, ReportRow } from '../../../src-shared/domain/dissemination';
import type { ReportFilters, ReportLang, ReportSummary } from '../../../src-shared/domain/report';
import type { Sink } from './sink';


const W = 841.89;
const H = 595.28;
const M = 36;
const FOOTER_Y = H - 24;
const FS = 7;
const LINE = 8.2;
const ROW_H = 2 * LINE + 3.6;
const TABLE_TOP = M + 18;
const HEADER_H = ROW_H;
const ROWS_TOP = TABLE_TOP + HEADER_H;
export const ROWS_PER_PAGE = Math.floor((FOOTER_Y - 10 - ROWS_TOP) / ROW_H);

const COLORS: Record<DisseminationStatus, string> = { DONE: '#2e7d32', WAITING_ACK: '#e08a00', PENDING: '#1f6fb2', FAILED: '#c62828' };
const STATUS_ORDER: DisseminationStatus[] = ['DONE', 'WAITING_ACK', 'PENDING', 'FAILED'];

const LABELS = {
  en: {
    title: 'Dissemination report',
    detail: 'Dissemination report — detail',
    generated: 'Generated',
    page: (n: number, total: number) => `Page ${n} of ${total}`,
    period: 'Period (request time, UTC, both days included)',
    from: 'from the first',
    to: 'to now',
    recipients: 'Recipients',
    products: 'Products',
    urnPrefix: 'URN prefix',
    statuses: 'Status',
    tenant: 'Tenant',
    all: 'all',
    andMore: (n: number) => `and ${n} more`,
    summary: 'Summary',
    total: 'Disseminations',
    bytes: 'Bytes sent',
    files: 'Files sent',
    ackMedian: 'Time to acknowledgement, median',
    ackP95: 'Time to acknowledgement, 95th percentile',
    ackCount: 'Acknowledged by the recipient',
    byRecipient: 'By recipient',
    moreRecipients: (n: number) => `… and ${n} more recipient(s): see the CSV or JSON export`,
    chart: { day: 'Disseminations requested per day', week: 'Disseminations requested per week (from Monday)', month: 'Disseminations requested per month', year: 'Disseminations requested per year' },
    empty: 'No dissemination matches these filters.',
    status: { PENDING: 'Pending', WAITING_ACK: 'Waiting for ack', DONE: 'Done', FAILED: 'Failed' } as Record<DisseminationStatus, string>,
    short: { PENDING: 'Pending', WAITING_ACK: 'Waiting', DONE: 'Done', FAILED: 'Failed' } as Record<DisseminationStatus, string>,
    rowsTotal: 'Total',
    col: { urn: 'URN', product: 'Product', recipient: 'Recipient', requested: 'Requested', sent: 'Sent', ack: 'Acknowl.', status: 'Status', bytes: 'Bytes', files: 'Files', fixity: 'Fixity', attempts: 'Tries', error: 'Last error' },
    fixity: { verified: 'verified', failed: 'FAILED', 'not-applicable': 'n/a' } as Record<string, string>,
    none: '—',
  },
  fr: {
    title: 'Rapport de diffusion',
    detail: 'Rapport de diffusion — détail',
    generated: 'Généré le',
    page: (n: number, total: number) => `Page ${n} sur ${total}`,
    period: 'Période (date de demande, UTC, bornes incluses)',
    from: 'depuis le début',
    to: "jusqu'à maintenant",
    recipients: 'Destinataires',
    products: 'Produits',
    urnPrefix: 'Préfixe d’URN',
    statuses: 'Statut',
    tenant: 'Tenant',
    all: 'tous',
    andMore: (n: number) => `et ${n} de plus`,
    summary: 'Synthèse',
    total: 'Diffusions',
    bytes: 'Octets envoyés',
    files: 'Fichiers envoyés',
    ackMedian: 'Délai d’accusé de réception, médiane',
    ackP95: 'Délai d’accusé de réception, 95e centile',
    ackCount: 'Accusés par le destinataire',
    byRecipient: 'Par destinataire',
    moreRecipients: (n: number) => `… et ${n} autre(s) destinataire(s) : voir l’export CSV ou JSON`,
    chart: { day: 'Diffusions demandées par jour', week: 'Diffusions demandées par semaine (à partir du lundi)', month: 'Diffusions demandées par mois', year: 'Diffusions demandées par an' },
    empty: 'Aucune diffusion ne correspond à ces filtres.',
    status: { PENDING: 'En attente', WAITING_ACK: 'Attente de retour', DONE: 'Terminée', FAILED: 'En échec' } as Record<DisseminationStatus, string>,
    short: { PENDING: 'En attente', WAITING_ACK: 'Att. retour', DONE: 'Terminées', FAILED: 'En échec' } as Record<DisseminationStatus, string>,
    rowsTotal: 'Total',
    col: { urn: 'URN', product: 'Produit', recipient: 'Destinataire', requested: 'Demandée', sent: 'Envoyée', ack: 'Accusée', status: 'Statut', bytes: 'Octets', files: 'Fich.', fixity: 'Sommes', attempts: 'Ess.', error: 'Dernière erreur' },
    fixity: { verified: 'vérifiées', failed: 'ÉCHEC', 'not-applicable': 's.o.' } as Record<string, string>,
    none: '—',
  },
};
type Labels = (typeof LABELS)['en'];

/** resources/fonts, from the sources (src-main/service/reports) or the bundle (out/main). */
export function fontsDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'resources', 'fonts');
    if (fs.existsSync(path.join(candidate, 'DejaVuSansCondensed.ttf'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('resources/fonts/DejaVuSansCondensed.ttf not found next to the application');
}

export function humanBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB', 'PB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

export function humanDuration(ms: number | null): string {
  if (ms === null) return '—';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return `${min} min ${s % 60} s`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

const grouped = (n: number): string => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');

interface Column {
  label: keyof Labels['col'];
  width: number;
  align?: 'left' | 'right';
  cell(r: ReportRow, l: Labels): string;
}

const dateCell = (iso: string | null) => (iso ? `${iso.slice(0, 10)}\n${iso.slice(11, 19)}` : '—');

const COLUMNS: Column[] = [
  { label: 'urn', width: 168, cell: (r) => r.urn },
  { label: 'product', width: 112, cell: (r) => r.productName || '—' },
  { label: 'recipient', width: 72, cell: (r) => r.recipientLabel },
  { label: 'requested', width: 44, cell: (r) => dateCell(r.requestedAt) },
  { label: 'sent', width: 44, cell: (r) => dateCell(r.sentAt) },
  { label: 'ack', width: 54, cell: (r) => (r.ackVia === 'auto' && r.acknowledgedAt ? `${r.acknowledgedAt.slice(0, 10)}\n(auto)` : dateCell(r.acknowledgedAt)) },
  { label: 'status', width: 52, cell: (r, l) => l.status[r.status] },
  { label: 'bytes', width: 40, align: 'right', cell: (r) => (r.sentAt || r.bytes ? humanBytes(r.bytes) : '—') },
  { label: 'files', width: 24, align: 'right', cell: (r) => (r.sentAt || r.files ? String(r.files) : '—') },
  { label: 'fixity', width: 42, cell: (r, l) => (r.fixity ? l.fixity[r.fixity] : '—') },
  { label: 'attempts', width: 22, align: 'right', cell: (r) => String(r.attempts) },
  { label: 'error', width: W - 2 * M - (168 + 112 + 72 + 44 + 44 + 54 + 52 + 40 + 24 + 42 + 22), cell: (r) => r.lastError ?? '' },
];

/** The glyph lookup of pdfkit's current font (fontkit's, behind a field pdfkit does not type). */
type CurrentFont = { _font?: { font?: { hasGlyphForCodePoint?(cp: number): boolean } } };

/** What stands for a character the font cannot draw: visible, where pdfkit would leave a blank. */
export const MISSING_GLYPH = '□';

/** Character widths at size 1, per font, for fitting text without pdfkit's line wrapper. */
class Measure {
  private readonly cache = new Map<string, number>();
  private readonly glyphs = new Map<string, boolean>();
  constructor(private readonly doc: PDFKit.PDFDocument) {}

  /**
   * `text` with every character the font has no glyph for (CJK, many scripts beyond Latin, Greek
   * and Cyrillic) replaced by MISSING_GLYPH: a name must not lose letters silently. The CSV and
   * JSON exports keep every character.
   */
  printable(text: string, font: string): string {
    if (/^[\x20-\x7e\u00a0-\u024f]*$/.test(text)) return text; // Latin: DejaVu has it all
    let out = '';
    for (const ch of text) {
      const key = font + ch;
      let has = this.glyphs.get(key);
      if (has === undefined) {
        this.doc.font(font);
        const lookup = (this.doc as unknown as CurrentFont)._font?.font;
        has = lookup?.hasGlyphForCodePoint ? lookup.hasGlyphForCodePoint(ch.codePointAt(0)!) : true;
        this.glyphs.set(key, has);
      }
      out += has ? ch : MISSING_GLYPH;
    }
    return out;
  }

  width(text: string, font: string, size: number): number {
    let w = 0;
    for (const ch of text) {
      const key = font + ch;
      let cw = this.cache.get(key);
      if (cw === undefined) {
        this.doc.font(font).fontSize(100);
        cw = this.doc.widthOfString(ch) / 100;
        this.cache.set(key, cw);
      }
      w += cw;
    }
    return w * size;
  }

  /** Up to `maxLines` lines no wider than `width`, breaking after separators when it can; "…" ends a cut. */
  fit(text: string, width: number, maxLines: number, font: string, size: number): string[] {
    const out: string[] = [];
    const paragraphs = text.replace(/[\u0000-\u0009\u000b-\u001f\u007f]+/g, ' ').split('\n');
    for (let p = 0; p < paragraphs.length; p++) {
      let rest = paragraphs[p].trim();
      while (rest.length) {
        if (out.length === maxLines) {
          out[maxLines - 1] = this.ellipsize(out[maxLines - 1], width, font, size);
          return out;
        }
        if (this.width(rest, font, size) <= width) {
          out.push(rest);
          break;
        }
        const lastLine = out.length === maxLines - 1;
        if (lastLine) {
          out.push(this.ellipsize(rest, width, font, size));
          return out;
        }
        let n = 0;
        let w = 0;
        for (const ch of rest) {
          const cw = this.width(ch, font, size);
          if (w + cw > width) break;
          w += cw;
          n += ch.length;
        }
        n = Math.max(1, n);
        const head = rest.slice(0, n);
        const space = head.lastIndexOf(' ');
        const mark = Math.max(head.lastIndexOf(':'), head.lastIndexOf('/'), head.lastIndexOf('-'), head.lastIndexOf('_'), head.lastIndexOf(',')) + 1;
        if (n < rest.length && rest[n] !== ' ') {
          if (space > n * 0.35) n = space;
          else if (mark > n * 0.6) n = mark;
        }
        out.push(rest.slice(0, n).trimEnd());
        rest = rest.slice(n).trimStart();
      }
      if (!rest.length && p < paragraphs.length - 1 && out.length === maxLines) {
        out[maxLines - 1] = this.ellipsize(out[maxLines - 1], width, font, size);
        return out;
      }
    }
    return out;
  }

  private ellipsize(text: string, width: number, font: string, size: number): string {
    const room = width - this.width('…', font, size);
    let w = 0;
    let n = 0;
    for (const ch of text) {
      const cw = this.width(ch, font, size);
      if (w + cw > room) break;
      w += cw;
      n += ch.length;
    }
    return text.slice(0, n).trimEnd() + '…';
  }
}

export interface PdfHead {
  generatedAt: string;
  filters: ReportFilters;
  summary: ReportSummary;
  lang?: ReportLang;
}

/** Writes the whole PDF to the sink; returns the rows drawn and the page count. */
export async function writePdf(batches: AsyncIterable<ReportRow[]>, sink: Sink, head: PdfHead, opts: { onRows?: (n: number) => void } = {}): Promise<{ rows: number; pages: number }> {
  const l = LABELS[head.lang ?? 'en'];
  const fonts = fontsDir();
  const doc = new PDFDocument({
    autoFirstPage: false,
    size: 'A4',
    layout: 'landscape',
    margin: 0,
    compress: true,
    info: { Title: l.title, Author: 'Fonds', Subject: `${head.filters.from ?? '…'} – ${head.filters.to ?? '…'}`, CreationDate: new Date(head.generatedAt) },
  });
  doc.registerFont('R', path.join(fonts, 'DejaVuSansCondensed.ttf'));
  doc.registerFont('B', path.join(fonts, 'DejaVuSansCondensed-Bold.ttf'));
  let failed: Error | undefined;
  doc.on('data', (chunk: Uint8Array) => {
    try {
      sink.write(chunk);
    } catch (err) {
      failed = err as Error;
    }
  });
  const ended = new Promise<void>((resolve, reject) => {
    doc.once('end', resolve);
    doc.once('error', reject);
  });
  const measure = new Measure(doc);
  const pages = 1 + Math.ceil(head.summary.total / ROWS_PER_PAGE);
  const stamp = `${l.generated} ${head.generatedAt.replace('T', ' ').slice(0, 19)} UTC`;

  const text = (s: string, x: number, y: number, font = 'R', size = FS, color = '#000000', opt: PDFKit.Mixins.TextOptions = {}) => {
    const shown = measure.printable(s, font);
    return doc.font(font).fontSize(size).fillColor(color).text(shown, x, y, { lineBreak: false, ...opt });
  };
  const right = (s: string, xRight: number, y: number, font = 'R', size = FS, color = '#000000') => {
    const shown = measure.printable(s, font);
    return text(shown, xRight - measure.width(shown, font, size), y, font, size, color);
  };

  function footer(n: number): void {
    doc.moveTo(M, FOOTER_Y - 4).lineTo(W - M, FOOTER_Y - 4).lineWidth(0.5).strokeColor('#bbbbbb').stroke();
    text(`Fonds · ${l.title} · ${stamp}`, M, FOOTER_Y, 'R', 7.5, '#555555');
    right(l.page(n, pages), W - M, FOOTER_Y, 'R', 7.5, '#555555');
  }

  const newPage = () => {
    forgetLayouts(doc);
    doc.addPage({ size: 'A4', layout: 'landscape', margin: 0 });
  };

  // ---- page 1: title, filters, summary, by recipient, chart ----
  newPage();
  text(l.title, M, M, 'B', 20);
  right(stamp, W - M, M + 8, 'R', 9, '#444444');
  let y = M + 34;
  const f = head.filters;
  const list = (items: string[]) => (items.length ? items.slice(0, 5).join(', ') + (items.length > 5 ? ` ${l.andMore(items.length - 5)}` : '') : l.all);
  const filterLines: Array<[string, string]> = [
    [l.period, `${f.from ?? l.from} – ${f.to ?? l.to}`],
    [l.recipients, list(f.recipients)],
    [l.products, list(f.urns)],
    ...(f.urnPrefix ? ([[l.urnPrefix, f.urnPrefix]] as Array<[string, string]>) : []),
    [l.statuses, f.statuses.length ? f.statuses.map((s) => l.status[s]).join(', ') : l.all],
    [l.tenant, f.tenant ?? l.all],
  ];
  for (const [k, v] of filterLines) {
    text(l === LABELS.fr ? `${k} :` : `${k}:`, M, y, 'B', 8.5);
    const [line] = measure.fit(v, W - 2 * M - 230, 1, 'R', 8.5);
    text(line ?? '', M + 230, y, 'R', 8.5);
    y += 11.5;
  }
  y += 8;

  // summary (left)
  const s = head.summary;
  const top = y;
  text(l.summary, M, y, 'B', 11);
  y += 17;
  const summaryRows: Array<[string, string, string?]> = [
    [l.total, grouped(s.total)],
    ...STATUS_ORDER.map((st) => [`   ${l.status[st]}`, grouped(s.byStatus[st]), COLORS[st]] as [string, string, string]),
    [l.bytes, `${humanBytes(s.totalBytes)} (${grouped(s.totalBytes)})`],
    [l.files, grouped(s.totalFiles)],
    [l.ackCount, grouped(s.timeToAck.count)],
    [l.ackMedian, humanDuration(s.timeToAck.medianMs)],
    [l.ackP95, humanDuration(s.timeToAck.p95Ms)],
  ];
  for (const [i, [k, v, color]] of summaryRows.entries()) {
    if (i % 2 === 0) doc.rect(M, y - 2, 300, 12).fill('#f3f3f3');
    if (color) doc.rect(M + 3, y + 1.5, 6, 6).fill(color);
    text(k, M + 4, y, 'R', 8);
    right(v, M + 296, y, 'B', 8);
    y += 12;
  }
  const summaryBottom = y;

  // by recipient (right)
  const rx = M + 316;
  const rw = W - M - rx;
  y = top;
  text(l.byRecipient, rx, y, 'B', 11);
  y += 17;
  const rcols: Array<[string, number]> = [
    [l.col.recipient, 150],
    [l.rowsTotal, 48],
    ...STATUS_ORDER.map((st) => [l.short[st], 50] as [string, number]),
    [l.col.bytes, rw - 150 - 48 - 4 * 50],
  ];
  doc.rect(rx, y - 2, rw, 12).fill('#e4e4e4');
  let cx = rx;
  for (const [i, [label, w]] of rcols.entries()) {
    const [fitted] = measure.fit(label, w - 6, 1, 'B', 7.5);
    if (i === 0) text(fitted, cx + 3, y, 'B', 7.5);
    else right(fitted, cx + w - 3, y, 'B', 7.5);
    cx += w;
  }
  y += 12;
  const shown = s.byRecipient.slice(0, 10);
  for (const [i, r] of shown.entries()) {
    if (i % 2 === 1) doc.rect(rx, y - 2, rw, 12).fill('#f6f6f6');
    const values = [grouped(r.total), ...STATUS_ORDER.map((st) => grouped(r.byStatus[st])), humanBytes(r.bytes)];
    text(measure.fit(r.recipientLabel, rcols[0][1] - 6, 1, 'R', 7.5)[0] ?? '', rx + 3, y, 'R', 7.5);
    cx = rx + rcols[0][1];
    for (const [k, v] of values.entries()) {
      right(v, cx + rcols[k + 1][1] - 3, y, 'R', 7.5);
      cx += rcols[k + 1][1];
    }
    y += 12;
  }
  if (s.byRecipient.length > shown.length) {
    text(l.moreRecipients(s.byRecipient.length - shown.length), rx + 3, y, 'R', 7.5, '#555555');
    y += 12;
  }
  y = Math.max(y, summaryBottom) + 14;

  drawChart(doc, measure, l, s, M, y, W - 2 * M, FOOTER_Y - 16 - y);
  footer(1);

  // ---- detail pages ----
  let rows = 0;
  let pageNo = 1;
  let slot = ROWS_PER_PAGE;
  const detailTitle = `${l.detail} · ${f.from ?? l.from} – ${f.to ?? l.to}`;
  for await (const batch of batches) {
    for (const r of batch) {
      if (slot === ROWS_PER_PAGE) {
        newPage(); // the previous page is written out here
        pageNo++;
        slot = 0;
        text(detailTitle, M, M, 'B', 10);
        tableHeader();
        footer(pageNo);
      }
      drawRow(r, ROWS_TOP + slot * ROW_H, slot % 2 === 1);
      slot++;
      rows++;
    }
    opts.onRows?.(rows);
    if (failed) throw failed;
    await sink.drain();
  }
  doc.end();
  await ended;
  if (failed) throw failed;
  return { rows, pages: pageNo };

  function tableHeader(): void {
    doc.rect(M, TABLE_TOP, W - 2 * M, HEADER_H).fill('#e4e4e4');
    let x = M;
    for (const c of COLUMNS) {
      const lines = measure.fit(l.col[c.label], c.width - 4, 2, 'B', FS);
      lines.forEach((line, i) => (c.align === 'right' ? right(line, x + c.width - 2, TABLE_TOP + 2 + i * LINE, 'B', FS) : text(line, x + 2, TABLE_TOP + 2 + i * LINE, 'B', FS)));
      x += c.width;
    }
  }

  function drawRow(r: ReportRow, top: number, shaded: boolean): void {
    if (shaded) doc.rect(M, top, W - 2 * M, ROW_H).fill('#f6f6f6');
    let x = M;
    for (const c of COLUMNS) {
      const color = c.label === 'status' ? COLORS[r.status] : c.label === 'error' || (c.label === 'fixity' && r.fixity === 'failed') ? '#8a1c1c' : '#000000';
      const font = c.label === 'status' ? 'B' : 'R';
      const value = measure.printable(c.cell(r, l), font); // before fitting: the widths are those drawn
      const lines = measure.fit(value, c.width - 4, 2, font, FS);
      lines.forEach((line, i) => (c.align === 'right' ? right(line, x + c.width - 2, top + 2 + i * LINE, font, FS, color) : text(line, x + 2, top + 2 + i * LINE, font, FS, color)));
      x += c.width;
    }
  }
}

/**
 * pdfkit keeps the layout of every word drawn in a per-font cache for the life of the document:
 * with 100,000 distinct URNs and dates it grows past a gigabyte. Turning it off (fontLayoutCache:
 * false) makes a large report three times slower, so it is emptied at each page instead.
 */
function forgetLayouts(doc: PDFKit.PDFDocument): void {
  const families = (doc as unknown as { _fontFamilies?: Record<string, { layoutCache?: unknown }> })._fontFamilies ?? {};
  for (const font of Object.values(families)) if (font.layoutCache) font.layoutCache = Object.create(null);
}

function drawChart(doc: PDFKit.PDFDocument, measure: Measure, l: Labels, s: ReportSummary, x: number, y: number, w: number, h: number): void {
  const { unit, buckets } = s.timeline;
  // measure first: a width not yet cached changes the document's font size
  const put = (text: string, px: number, py: number, font: string, size: number, color: string) => doc.font(font).fontSize(size).fillColor(color).text(text, px, py, { lineBreak: false });
  put(l.chart[unit], x, y, 'B', 11, '#000000');
  // legend
  let lx = x + w;
  for (const st of [...STATUS_ORDER].reverse()) {
    const label = l.status[st];
    lx -= measure.width(label, 'R', 8) + 22;
    doc.rect(lx, y + 3, 8, 8).fill(COLORS[st]);
    put(label, lx + 11, y + 2, 'R', 8, '#000000');
  }
  const plotX = x + 40;
  const plotY = y + 22;
  const plotW = w - 44;
  const plotH = h - 22 - 26;
  if (plotH < 30) return;
  const max = Math.max(0, ...buckets.map((b) => b.total));
  const step = niceStep(max);
  const top = Math.max(step, Math.ceil(max / step) * step);
  // axes and grid
  doc.lineWidth(0.5);
  for (let v = 0; v <= top; v += step) {
    const gy = plotY + plotH - (v / top) * plotH;
    doc.moveTo(plotX, gy).lineTo(plotX + plotW, gy).strokeColor(v === 0 ? '#777777' : '#dddddd').stroke();
    const label = grouped(v);
    const lx2 = plotX - 4 - measure.width(label, 'R', 7);
    put(label, lx2, gy - 3.5, 'R', 7, '#555555');
  }
  if (!buckets.length || max === 0) {
    const ex = plotX + plotW / 2 - measure.width(l.empty, 'R', 10) / 2;
    put(l.empty, ex, plotY + plotH / 2 - 6, 'R', 10, '#555555');
    return;
  }
  const slotW = plotW / buckets.length;
  const barW = Math.max(0.8, Math.min(28, slotW * 0.75));
  const labelEvery = Math.max(1, Math.ceil(buckets.length / Math.floor(plotW / 62)));
  buckets.forEach((b, i) => {
    const bx = plotX + i * slotW + (slotW - barW) / 2;
    let base = plotY + plotH;
    for (const st of STATUS_ORDER) {
      const n = b.byStatus[st];
      if (!n) continue;
      const bh = (n / top) * plotH;
      doc.rect(bx, base - bh, barW, bh).fill(COLORS[st]);
      base -= bh;
    }
    if (i % labelEvery === 0) {
      const label = unit === 'month' ? b.start.slice(0, 7) : unit === 'year' ? b.start.slice(0, 4) : b.start;
      const lw = measure.width(label, 'R', 7);
      put(label, Math.min(plotX + plotW - lw, Math.max(plotX, bx + barW / 2 - lw / 2)), plotY + plotH + 4, 'R', 7, '#555555');
    }
  });
}

function niceStep(max: number): number {
  if (max <= 5) return 1;
  const raw = max / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}
