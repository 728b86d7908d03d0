import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { DisseminationStatus } from '../../src-shared/domain/dissemination';
import { reportFileName, type ReportExport, type ReportFiltersInput, type ReportFormat, type ReportPreview } from '../../src-shared/domain/report';
import { ApiError, call, download, mode } from '../api/client';
import { onPushed } from '../api/events';

export interface ReportForm {
  from: string;
  to: string;
  /** comma- or line-separated labels */
  recipients: string;
  /** one URN per line */
  urns: string;
  urnPrefix: string;
  statuses: DisseminationStatus[];
  tenant: string;
}

const day = (d: Date) => d.toISOString().slice(0, 10);

/**
 * The report screen: filters, a preview (summary + first rows), and the export. In Electron the
 * report is written by the service to a path (there is no save dialog bridge: the preload exposes
 * call/subscribe only), defaulting to ~/Documents/Fonds reports; in a browser it is also offered as
 * a download from GET /api/reports/dissemination.<format>.
 */
export const useReports = defineStore('reports', () => {
  const now = new Date();
  const form = ref<ReportForm>({
    from: day(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1))),
    to: day(now),
    recipients: '',
    urns: '',
    urnPrefix: '',
    statuses: [],
    tenant: '',
  });
  const preview = ref<ReportPreview | undefined>();
  const error = ref<string | undefined>();
  const busy = ref(false);
  const format = ref<ReportFormat>('pdf');
  const bom = ref(true);
  const lang = ref<'en' | 'fr'>('en');
  const path = ref('');
  const pathEdited = ref(false);
  const overwrite = ref(false);
  const exporting = ref(false);
  const progress = ref<{ rows: number; total: number; bytes: number } | undefined>();
  const lastExport = ref<ReportExport | { downloaded: string; bytes: number } | undefined>();
  const exportError = ref<string | undefined>();
  let exportId = '';

  onPushed((p) => {
    if (p.channel === 'progress' && p.progress.kind === 'report' && p.progress.objectId === exportId) {
      const pr = p.progress.progress;
      progress.value = { rows: pr.files, total: pr.totalFiles ?? 0, bytes: pr.bytes };
    }
  });

  function filters(): ReportFiltersInput {
    const f = form.value;
    const list = (s: string) => s.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);
    return {
      ...(f.from ? { from: f.from } : {}),
      ...(f.to ? { to: f.to } : {}),
      recipients: list(f.recipients),
      urns: f.urns.split('\n').map((x) => x.trim()).filter(Boolean),
      ...(f.urnPrefix.trim() ? { urnPrefix: f.urnPrefix.trim() } : {}),
      statuses: f.statuses,
      ...(f.tenant.trim() ? { tenant: f.tenant.trim() } : {}),
    };
  }

  const message = (err: unknown) => (err instanceof ApiError || err instanceof Error ? err.message : String(err));

  /** tickets: an answer for filters older than the last asked is dropped (answers can cross) */
  let asks = 0;
  let pathAsks = 0;

  async function refresh(): Promise<void> {
    const ticket = ++asks;
    busy.value = true;
    error.value = undefined;
    try {
      const answer = await call('reports.preview', { filters: filters(), limit: 50 });
      if (ticket === asks) preview.value = answer;
    } catch (err) {
      if (ticket === asks) error.value = message(err);
    } finally {
      if (ticket === asks) busy.value = false;
    }
    if (!pathEdited.value) await suggestPath();
  }

  async function suggestPath(): Promise<void> {
    const ticket = ++pathAsks;
    try {
      const suggested = (await call('reports.suggestPath', { filters: filters(), format: format.value })).path;
      if (ticket === pathAsks) path.value = suggested;
    } catch {
      /* the filters are being typed: keep the last suggestion */
    }
  }

  /** Writes the report on the machine that runs Fonds, at `path`. */
  async function exportToPath(): Promise<void> {
    exporting.value = true;
    exportError.value = undefined;
    lastExport.value = undefined;
    exportId = `ui-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    progress.value = { rows: 0, total: preview.value?.summary.total ?? 0, bytes: 0 };
    try {
      lastExport.value = await call('reports.export', {
        filters: filters(),
        format: format.value,
        path: path.value.trim(),
        overwrite: overwrite.value,
        bom: bom.value,
        lang: lang.value,
        exportId,
      });
    } catch (err) {
      exportError.value = message(err);
    } finally {
      exporting.value = false;
      progress.value = undefined;
    }
  }

  /** Browser mode: the HTTP download. */
  function downloadUrl(): string {
    const f = filters();
    const q = new URLSearchParams();
    if (f.from) q.set('from', f.from);
    if (f.to) q.set('to', f.to);
    for (const r of f.recipients ?? []) q.append('recipient', r);
    for (const u of f.urns ?? []) q.append('urn', u);
    if (f.urnPrefix) q.set('urnPrefix', f.urnPrefix);
    for (const s of f.statuses ?? []) q.append('status', s);
    if (f.tenant) q.set('tenant', f.tenant);
    if (format.value === 'csv' && bom.value) q.set('bom', '1');
    if (format.value === 'pdf') q.set('lang', lang.value);
    return `/api/reports/dissemination.${format.value}?${q}`;
  }

  async function downloadReport(): Promise<void> {
    exporting.value = true;
    exportError.value = undefined;
    lastExport.value = undefined;
    const name = reportFileName({ from: form.value.from || undefined, to: form.value.to || undefined }, format.value);
    try {
      const size = await download(downloadUrl(), name);
      lastExport.value = { downloaded: name, bytes: size };
    } catch (err) {
      exportError.value = message(err);
    } finally {
      exporting.value = false;
    }
  }

  return {
    form,
    preview,
    error,
    busy,
    format,
    bom,
    lang,
    path,
    pathEdited,
    overwrite,
    exporting,
    progress,
    lastExport,
    exportError,
    canDownload: mode === 'http',
    refresh,
    suggestPath,
    exportToPath,
    downloadUrl,
    downloadReport,
  };
});
