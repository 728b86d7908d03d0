/**
 * Dissemination reports: the filters, the summary and the document shapes shared by the service
 * (`src-main/service/reports/`), the transports and the report screen. Rows are `ReportRow`
 * (domain/dissemination.ts), built from the event log alone.
 *
 * The JSON export is described by `resources/schemas/dissemination-report.schema.json`.
 */
import { z } from 'zod';
import { DisseminationStatuses, type DisseminationStatus, type ReportRow } from './dissemination';

export const ReportFormats = ['csv', 'json', 'pdf'] as const;
export type ReportFormat = (typeof ReportFormats)[number];

/** What a JSON export says it is (the `report` and `version` fields of the document). */
export const REPORT_DOCUMENT = { report: 'dissemination', version: 1 } as const;

/** A calendar day, YYYY-MM-DD (UTC). */
const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a date YYYY-MM-DD')
  .refine((s) => {
    const d = new Date(`${s}T00:00:00.000Z`);
    return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
  }, 'not a calendar date');

/**
 * Which disseminations a report covers. The period is on the request time, whole days in UTC,
 * both ends included: from 00:00:00.000Z of `from` to 23:59:59.999Z of `to`. A row's status is
 * the one after the last event up to the end of the period (a report of a past month does not
 * change when later acknowledgements arrive). Empty lists mean "any".
 */
export const reportFiltersSchema = z
  .object({
    from: day.optional(),
    to: day.optional(),
    recipients: z.array(z.string().trim().min(1).max(128)).max(100).default([]),
    urns: z.array(z.string().trim().min(1).max(300)).max(10_000).default([]),
    urnPrefix: z.string().trim().min(1).max(300).optional(),
    statuses: z.array(z.enum(DisseminationStatuses)).max(DisseminationStatuses.length).default([]),
    tenant: z.string().trim().min(1).max(128).optional(),
  })
  .refine((f) => !f.from || !f.to || f.from <= f.to, { message: 'from must not be after to', path: ['to'] });
export type ReportFilters = z.output<typeof reportFiltersSchema>;
export type ReportFiltersInput = z.input<typeof reportFiltersSchema>;

export type StatusCounts = Record<DisseminationStatus, number>;

/** Disseminations requested per day, week (from Monday) or month, by status: the chart's data. */
export interface ReportTimeline {
  unit: 'day' | 'week' | 'month' | 'year';
  buckets: Array<{ start: string; total: number; byStatus: StatusCounts }>;
}

export interface ReportSummary {
  /** rows in the report */
  total: number;
  byStatus: StatusCounts;
  /** by recipient label, most rows first */
  byRecipient: Array<{ recipientLabel: string; total: number; byStatus: StatusCounts; bytes: number }>;
  totalBytes: number;
  totalFiles: number;
  firstRequestedAt: string | null;
  lastRequestedAt: string | null;
  /**
   * Request to acknowledgement, over rows acknowledged by the recipient (ackVia other than 'auto':
   * recipients that require no acknowledgement would count as zero). Median: the middle value (mean
   * of the two middle ones for an even count); p95: nearest rank. Milliseconds.
   */
  timeToAck: { count: number; medianMs: number | null; p95Ms: number | null };
  timeline: ReportTimeline;
}

/** The JSON export: this header, then `rows` (streamed). */
export interface ReportDocument {
  report: typeof REPORT_DOCUMENT.report;
  version: typeof REPORT_DOCUMENT.version;
  generatedAt: string;
  filters: ReportFilters;
  summary: ReportSummary;
  rows: ReportRow[];
}

export interface ReportPreview {
  generatedAt: string;
  filters: ReportFilters;
  summary: ReportSummary;
  /** the first rows, in request order */
  rows: ReportRow[];
}

export interface ReportExport {
  path: string;
  format: ReportFormat;
  rows: number;
  bytes: number;
  pages?: number;
  generatedAt: string;
  durationMs: number;
}

/** Columns of the CSV export (the JSON field names, in this order). */
export const REPORT_COLUMNS = [
  'urn',
  'productName',
  'tenant',
  'recipientLabel',
  'requestedAt',
  'sentAt',
  'acknowledgedAt',
  'ackVia',
  'status',
  'bytes',
  'files',
  'fixity',
  'attempts',
  'lastError',
] as const satisfies ReadonlyArray<keyof ReportRow>;

/** The file name a report is offered under: dissemination-report_<from>_<to>.<ext>. */
export function reportFileName(filters: Pick<ReportFilters, 'from' | 'to'>, format: ReportFormat): string {
  return `dissemination-report_${filters.from ?? 'start'}_${filters.to ?? 'now'}.${format}`;
}

export const ReportLangs = ['en', 'fr'] as const;
export type ReportLang = (typeof ReportLangs)[number];

/** A report to stream (HTTP download, CLI to stdout): filters, format and options. */
export const reportStreamSchema = z.object({
  filters: reportFiltersSchema.prefault({}),
  format: z.enum(ReportFormats),
  /** CSV only: start with a UTF-8 byte order mark (spreadsheets then read accents right) */
  bom: z.boolean().default(false),
  /** PDF only: the language of titles and labels */
  lang: z.enum(ReportLangs).default('en'),
});
export type ReportStreamInput = z.input<typeof reportStreamSchema>;
export type ReportStream = z.output<typeof reportStreamSchema>;
