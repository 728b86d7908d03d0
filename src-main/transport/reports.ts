/**
 * `GET /api/reports/dissemination.{csv|json|pdf}?from=&to=&recipient=&urn=&urnPrefix=&status=&tenant=&bom=&lang=`:
 * the dissemination report as a download (bearer token checked by http.ts; Content-Disposition
 * attachment), streamed as it is made. `recipient`, `urn` and `status` may repeat. A bad filter is a
 * 400 with the usual JSON error; a client that goes away stops the report.
 */
import type http from 'node:http';
import { reportFileName, type ReportFormat, type ReportStreamInput } from '../../src-shared/domain/report';
import type { Service } from '../service';

export const REPORT_ROUTE = /^\/api\/reports\/dissemination\.(csv|json|pdf)$/;

const CONTENT_TYPE: Record<ReportFormat, string> = {
  csv: 'text/csv; charset=utf-8; header=present',
  json: 'application/json; charset=utf-8',
  pdf: 'application/pdf',
};

/** The query string as the report's input; the service validates it. */
export function reportQuery(format: string, q: URLSearchParams): ReportStreamInput {
  const one = (k: string) => q.get(k) ?? undefined;
  const flag = (k: string) => ['1', 'true', 'yes'].includes((q.get(k) ?? '').toLowerCase());
  return {
    format: format as ReportFormat,
    filters: {
      ...(one('from') ? { from: one('from') } : {}),
      ...(one('to') ? { to: one('to') } : {}),
      recipients: q.getAll('recipient'),
      urns: q.getAll('urn'),
      ...(one('urnPrefix') ? { urnPrefix: one('urnPrefix') } : {}),
      statuses: q.getAll('status').map((s) => s.toUpperCase()) as never,
      ...(one('tenant') ? { tenant: one('tenant') } : {}),
    },
    bom: flag('bom'),
    ...(one('lang') ? { lang: one('lang') as 'en' | 'fr' } : {}),
  };
}

export async function serveReport(req: http.IncomingMessage, res: http.ServerResponse, service: Service, url: URL, format: string): Promise<void> {
  const input = reportQuery(format, url.searchParams);
  const stop = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) stop.abort();
  });
  await service.writeReport(input, res, {
    signal: stop.signal,
    onReady: () => {
      const name = reportFileName({ from: input.filters?.from, to: input.filters?.to }, input.format);
      res.writeHead(200, {
        'content-type': CONTENT_TYPE[input.format],
        'content-disposition': `attachment; filename="${name}"`,
        'cache-control': 'no-store',
      });
    },
  });
  res.end();
}
