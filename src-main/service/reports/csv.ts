import { stringify } from 'csv-stringify/sync';
import type { ReportRow } from '../../../src-shared/domain/dissemination';
import { REPORT_COLUMNS } from '../../../src-shared/domain/report';
import type { Sink } from './sink';

/**
 * What a spreadsheet reads as the start of a formula (OWASP "CSV Injection"): =, +, -, @, tab, CR,
 * and the full-width =, +, -, @ that Apple Numbers folds into them. URNs, product names, recipient
 * labels and errors come from partners (a recipient label, a product's providerId, a webhook's
 * answer): `=HYPERLINK(…)` or `@SUM(…)|cmd` must open as text, not run.
 */
const FORMULA_START = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

/**
 * A text cell as written: one that a spreadsheet would take for a formula gets a leading `'`
 * inside a quoted field (OWASP's advice; spreadsheets show the text, and `'` is visible to a
 * program reading it back). Only strings pass here: numbers (bytes, files, attempts) keep their
 * digits whatever their sign.
 */
const textCell = (value: string): string | { value: string; quoted: true } => (FORMULA_START.test(value) ? { value: `'${value}`, quoted: true } : value);

/**
 * RFC 4180 CSV with csv-stringify: a header line, CRLF line ends, fields quoted when they hold a
 * comma, a quote or a line break (CR or LF alone too), UTF-8, an optional BOM for spreadsheets.
 * Empty cells are nulls (not sent, not acknowledged...). Text cells that would start a formula are
 * neutralised (`textCell`). One batch of rows at a time.
 */
export async function writeCsv(batches: AsyncIterable<ReportRow[]>, sink: Sink, opts: { bom?: boolean; onRows?: (n: number) => void }): Promise<number> {
  const options = { columns: [...REPORT_COLUMNS], record_delimiter: 'windows' as const, quoted_match: /[\r\n]/, cast: { string: textCell } };
  sink.write(stringify([], { ...options, header: true, bom: opts.bom === true }));
  let rows = 0;
  for await (const batch of batches) {
    sink.write(stringify(batch, { ...options, header: false }));
    rows += batch.length;
    opts.onRows?.(rows);
    await sink.drain();
  }
  return rows;
}
