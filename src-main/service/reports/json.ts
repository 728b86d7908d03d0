import type { ReportRow } from '../../../src-shared/domain/dissemination';
import { REPORT_DOCUMENT, type ReportFilters, type ReportSummary } from '../../../src-shared/domain/report';
import type { Sink } from './sink';

/**
 * The JSON document of resources/schemas/dissemination-report.schema.json, streamed: the header
 * (filters and summary, both known after the first pass) then one row per line.
 */
export async function writeJson(
  batches: AsyncIterable<ReportRow[]>,
  sink: Sink,
  head: { generatedAt: string; filters: ReportFilters; summary: ReportSummary },
  opts: { onRows?: (n: number) => void } = {},
): Promise<number> {
  const header = { ...REPORT_DOCUMENT, generatedAt: head.generatedAt, filters: head.filters, summary: head.summary };
  sink.write(`${JSON.stringify(header).slice(0, -1)},"rows":[`);
  let rows = 0;
  for await (const batch of batches) {
    let text = '';
    for (const row of batch) text += `${rows++ ? ',' : ''}\n${JSON.stringify(row)}`;
    sink.write(text);
    opts.onRows?.(rows);
    await sink.drain();
  }
  sink.write(rows ? '\n]}\n' : ']}\n');
  return rows;
}
