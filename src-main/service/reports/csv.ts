import { stringify } from 'csv-stringify/sync';
import type { ReportRow } from '../../../src-shared/domain/dissemination';
import { REPORT_COLUMNS } from '../../../src-shared/domain/report';
import type { Sink } from './sink';

/**
 * RFC 4180 CSV with csv-stringify: a header line, CRLF line ends, fields quoted when they hold a
 * comma, a quote or a line break (CR or LF alone too), UTF-8, an optional BOM for spreadsheets.
 * Empty cells are nulls (not sent, not acknowledged...). One batch of rows at a time.
 */
export async function writeCsv(batches: AsyncIterable<ReportRow[]>, sink: Sink, opts: { bom?: boolean; onRows?: (n: number) => void }): Promise<number> {
  const options = { columns: [...REPORT_COLUMNS], record_delimiter: 'windows' as const, quoted_match: /[\r\n]/ };
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
