/**
 * The report screen in Chromium against the real `fonds serve`: filters, preview (summary, chart,
 * first rows), export to a path on the server, and the browser download. The dissemination events
 * are written into the served database through the store, as the contract specifies them.
 * Screenshots: tests/artifacts/reports-*.png.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src-main/service/db/store';
import { artifactsDir, explainFailures, e2eEnabled, openApp, type App } from '../helpers/browser';
import { RECIPIENTS, writeDisseminations, type FixtureDissemination } from '../helpers/report-fixture';
import { tempDir } from '../helpers/util';

let app: App | undefined;
const out = tempDir('fonds-e2e-reports-');

const FIXTURE: FixtureDissemination[] = Array.from({ length: 40 }, (_, i) => {
  const day = String(1 + (i % 28)).padStart(2, '0');
  const at = (h: number) => `2026-01-${day}T${String(h).padStart(2, '0')}:00:00.000Z`;
  const kind = i % 5;
  return {
    id: `e2e-${i}`,
    urn: `URN:FEATURE:DATA:project1:${String(i).padStart(8, '0')}-0000-0000-0000-000000000000:V1`,
    productName: i === 3 ? 'Orthophotographie départementale de la Haute-Garonne, millésime 2025, dalles au pas de 20 cm' : `Carte ${i} — Bodø / Saint-Étienne`,
    recipientLabel: RECIPIENTS[i % 4],
    ackRequired: kind !== 0,
    requestedAt: at(8),
    steps:
      kind === 4
        ? [{ type: 'failed', at: at(9), error: 'connect ECONNREFUSED 10.0.0.7:443', final: true, attempt: 1 }]
        : kind === 3
          ? []
          : [{ type: 'sent', at: at(9), bytes: 1_000_000 * (i + 1), files: 1 + i, fixity: 'verified' }, ...(kind === 1 ? [{ type: 'acknowledged' as const, at: at(11), via: 'amqp' as const }] : [])],
  };
});

explainFailures(() => [app]);

beforeAll(async () => {
  app = await openApp();
  if (!app) return;
  const db = new Database(path.join(app.serve.dataDir, 'fonds.sqlite'));
  db.pragma('busy_timeout = 5000');
  writeDisseminations(new Store(db), FIXTURE);
  db.close();
  fs.mkdirSync(artifactsDir, { recursive: true });
  await app.page.getByTestId('nav-reports').click();
}, 120_000);

afterAll(async () => {
  await app?.close();
  fs.rmSync(out, { recursive: true, force: true });
});

describe.runIf(e2eEnabled)('reports screen in Chromium', () => {
  it('previews January: summary, chart and first rows', async () => {
    const page = app!.page;
    await page.getByTestId('report-from').fill('2026-01-01');
    await page.getByTestId('report-to').fill('2026-01-31');
    await expect.poll(() => page.getByTestId('report-total').textContent(), { timeout: 20_000 }).toBe('40');
    expect(await page.getByTestId('report-count-FAILED').textContent()).toBe('8');
    expect(await page.getByTestId('report-count-WAITING_ACK').textContent()).toBe('8');
    expect(await page.getByTestId('report-count-PENDING').textContent()).toBe('8');
    expect(await page.getByTestId('report-count-DONE').textContent()).toBe('16');
    expect(await page.getByTestId('report-median').textContent()).toBe('3 h 0 min');
    expect(await page.getByTestId('report-row').count()).toBe(40);
    await expect.poll(() => page.getByTestId('report-by-recipient').textContent()).toContain('Tromsø byarkiv');
    await page.screenshot({ path: path.join(artifactsDir, 'reports-preview.png') });

    await page.getByTestId('report-status-FAILED').check();
    await expect.poll(() => page.getByTestId('report-total').textContent()).toBe('8');
    await page.getByTestId('report-status-FAILED').uncheck();
    await expect.poll(() => page.getByTestId('report-total').textContent()).toBe('40');
  });

  it('exports CSV to a path on the server, then downloads the PDF in the browser', async () => {
    const page = app!.page;
    await page.getByTestId('report-format-csv').check();
    await expect.poll(() => page.getByTestId('report-path').inputValue()).toMatch(/dissemination-report_2026-01-01_2026-01-31\.csv$/);
    const file = path.join(out, 'janvier.csv');
    await page.getByTestId('report-path').fill(file);
    await page.getByTestId('report-export').click();
    await expect.poll(() => page.getByTestId('report-done').textContent(), { timeout: 30_000 }).toContain('40 rows');
    const rows = parseCsv(fs.readFileSync(file), { columns: true, bom: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(40);
    expect(rows.some((r) => r.productName.includes('Haute-Garonne'))).toBe(true);
    // the same name again is refused until "replace" is ticked
    await page.getByTestId('report-export').click();
    await expect.poll(() => page.getByTestId('report-export-error').textContent()).toMatch(/exists/);

    await page.getByTestId('report-format-pdf').check();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('report-download').click()]);
    expect(download.suggestedFilename()).toBe('dissemination-report_2026-01-01_2026-01-31.pdf');
    const saved = path.join(out, 'download.pdf');
    await download.saveAs(saved);
    expect(fs.readFileSync(saved).subarray(0, 5).toString()).toBe('%PDF-');
    await expect.poll(() => page.getByTestId('report-done').textContent()).toContain('Downloaded');
    await page.screenshot({ path: path.join(artifactsDir, 'reports-export.png') });
  });
});
