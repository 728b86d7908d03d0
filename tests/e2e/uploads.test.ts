/**
 * End to end, as a person would: the built UI served by `fonds serve`, driven in Debian Chromium.
 * Screenshots land in tests/artifacts/ to be looked at.
 */
import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactsDir, explainFailures, e2eEnabled, openApp, type App, type ServeProcess } from '../helpers/browser';
import { fixturesDir, tempDir, writeTree } from '../helpers/util';

let app: App | undefined;
let serve: ServeProcess | undefined;
let page: Page;
const delivery = tempDir('fonds-e2e-delivery-');

explainFailures(() => [app ?? { page, serve }]);

beforeAll(async () => {
  writeTree(delivery, {
    'Rapport annuel.pdf': 'pdf',
    'Rapport annuel.pdf.md5': crypto.createHash('md5').update('pdf').digest('hex'),
    'plans/Plan.tif': 'tif',
    'plans/plan.tif': 'TIF',
  });
  // openApp loads the printed link (…/#token=…), as a person would
  app = await openApp();
  if (!app) return;
  serve = app.serve;
  page = app.page;
}, 120_000);

afterAll(async () => {
  await app?.close();
  fs.rmSync(delivery, { recursive: true, force: true });
});

describe.runIf(e2eEnabled)('uploads screen in Chromium', () => {
  it('takes the token from the address and hides it', async () => {
    await expect.poll(() => page.url()).not.toContain('token=');
    await page.getByText('Connected').waitFor();
  });

  it('loads without an uncaught error or a missing file (its icon included)', async () => {
    const href = await page.locator('link[rel=icon]').getAttribute('href');
    expect(href).toContain('favicon.svg');
    const icon = await fetch(new URL(href!, `${serve!.url}/`));
    expect(icon.status).toBe(200);
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
    expect(app!.problems).toEqual([]);
  });

  it('checks a folder given by path and shows both checks, findings and the timeline', async () => {
    await page.getByTestId('path-input').fill(delivery);
    await page.getByTestId('path-submit').click();
    await expect.poll(() => page.getByTestId('detail-status').textContent(), { timeout: 30_000 }).toBe('Closed');
    await expect.poll(() => page.getByTestId('check-archive').textContent()).toContain('failed');
    await expect.poll(() => page.getByTestId('check-standard').textContent()).toContain('passed');
    await page.getByTestId('findings').getByText('case-conflict').first().waitFor();
    await page.getByTestId('timeline').getByText('Listed 4 files').waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'uploads-checked.png') });
  });

  it('takes a dropped folder in the browser: pushes its files, then checks them', async () => {
    const bag = path.join(fixturesDir, 'v0.97/valid/basic-bag');
    // a real drop of a folder cannot be scripted; the folder picker feeds the same path
    await page.getByTestId('pick-folder').setInputFiles(bag);
    const item = page.getByTestId('upload-item').filter({ hasText: 'basic-bag' });
    await item.getByText('Closed').waitFor({ timeout: 30_000 });
    await item.click();
    await expect.poll(() => page.getByTestId('check-standard').textContent()).toContain('passed');
    await page.getByTestId('timeline').getByText('BagIt bag').first().waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'uploads-bag.png') });
  });

  it('scrolls a timeline of 100,000 events with only the visible rows in the page', async () => {
    const db = new Database(path.join(serve!.dataDir, 'fonds.sqlite'));
    db.pragma('busy_timeout = 5000');
    const id = db.prepare(`SELECT id FROM uploads WHERE name LIKE 'fonds-e2e-delivery-%'`).pluck().get() as string;
    const insert = db.prepare(`INSERT INTO events (kind, object_id, type, time, payload) VALUES ('upload', ?, 'hash.progress', ?, ?)`);
    db.transaction(() => {
      for (let i = 0; i < 100_000; i++) insert.run(id, new Date().toISOString(), JSON.stringify({ files: i, totalFiles: 100_000, bytes: i, rate: 1 }));
    })();
    db.close();
    await page.getByTestId('upload-item').filter({ hasText: 'fonds-e2e-delivery' }).click();
    const timeline = page.getByTestId('timeline');
    await expect.poll(() => page.getByText(/Timeline \(100,?009\)/).count()).toBe(1);
    await timeline.focus();
    await page.keyboard.press('End');
    await timeline.getByText(/^Created /).waitFor();
    const rendered = await timeline.locator('.vlist-row').count();
    expect(rendered).toBeLessThan(100);
    await page.keyboard.press('Home');
    await timeline.getByText('Hashing: 99999/100000 files', { exact: false }).waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'uploads-100k-timeline.png') });
  });

  it('switches to French', async () => {
    await page.getByTestId('locale').selectOption('fr');
    await page.getByText('Livraisons').first().waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'uploads-fr.png') });
    await page.getByTestId('locale').selectOption('en');
  });

  it('shows a clear error for a path that does not exist', async () => {
    await page.getByTestId('path-input').fill('/no/such/folder');
    await page.getByTestId('path-submit').click();
    await expect.poll(() => page.getByTestId('error').textContent()).toContain('/no/such/folder: no such file or folder');
  });
});
