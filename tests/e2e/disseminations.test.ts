/**
 * The dissemination screen in Chromium, as an archivist would use it: create a folder recipient,
 * notify a selection of products (only recipients with directNotificationEnabled are offered), follow
 * the deliveries to "waiting for notification return", read the timeline, acknowledge by hand.
 * Screenshots in tests/artifacts/disseminations-*.png.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Product } from '../../src-shared/domain/product';
import { artifactsDir, explainFailures, e2eEnabled, openApp, type App } from '../helpers/browser';
import { tempDir } from '../helpers/util';

let app: App | undefined;
let page: Page;
const partner = tempDir('fonds-e2e-partner-');
const products: Product[] = [];

explainFailures(() => [app]);

beforeAll(async () => {
  app = await openApp();
  if (!app) return;
  page = app.page;
  for (const [providerId, title] of [
    ['SCENE-2024-001', 'Orthophoto Finistère 2024'],
    ['SCENE-2024-002', 'Orthophoto Morbihan 2024'],
    ['SCENE-2024-003', 'Cadastre Quimper'],
  ]) {
    products.push(await app.api<Product>('products.create', { providerId, properties: { title } }));
  }
  await app.api('recipients.save', {
    recipientLabel: 'catalogue-interne',
    description: 'not offered: no direct notification',
    directNotificationEnabled: false,
    settings: { kind: 'folder', path: partner },
  });
}, 120_000);

afterAll(async () => {
  await app?.close();
  fs.rmSync(partner, { recursive: true, force: true });
});

describe.runIf(e2eEnabled)('dissemination screen in Chromium', () => {
  it('creates a recipient, notifies a selection, shows the timeline and takes a manual acknowledgement', async () => {
    await page.getByTestId('nav-disseminations').click();
    await page.getByTestId('tab-recipients').click();
    await page.getByTestId('new-recipient').click();
    await page.getByTestId('r-label').fill('partenaire-cnes');
    await page.getByTestId('r-description').fill('Dossier réseau du partenaire');
    await page.getByTestId('r-kind').selectOption('folder');
    await page.getByTestId('r-ack').check();
    await page.getByTestId('r-path').fill(partner);
    await page.getByTestId('r-save').click();
    await page.getByTestId('r-saved').waitFor();
    await expect.poll(() => page.getByTestId('recipient-item').count()).toBe(2);
    await page.screenshot({ path: path.join(artifactsDir, 'disseminations-recipients.png') });

    // bulk notify: two of the three products; only the direct recipient is offered
    await page.getByTestId('open-notify').click();
    const dialog = page.getByTestId('notify-dialog');
    await dialog.waitFor();
    await expect.poll(() => page.getByTestId('notify-product').count()).toBe(3);
    await expect.poll(() => page.getByTestId('notify-recipient').count()).toBe(1);
    await dialog.getByText('SCENE-2024-001').click();
    await dialog.getByText('SCENE-2024-002').click();
    await page.getByTestId('notify-recipient').check();
    await page.screenshot({ path: path.join(artifactsDir, 'disseminations-notify.png') });
    await page.getByTestId('notify-submit').click();
    await expect.poll(() => page.getByTestId('notify-result').textContent()).toContain('2 dissemination(s) requested');
    await page.getByTestId('notify-close').click();

    // both delivered to the folder, then waiting for the recipient's return
    await expect.poll(() => page.getByTestId('dis-item').count(), { timeout: 20_000 }).toBe(2);
    await expect.poll(async () => (await page.getByTestId('dis-status').allTextContents()).join(','), { timeout: 20_000 }).toBe('Waiting for notification return,Waiting for notification return');
    await page.getByTestId('dis-item').filter({ hasText: 'partenaire-cnes' }).first().click();
    const timeline = page.getByTestId('dis-timeline');
    await timeline.getByText('Requested').waitFor();
    await timeline.getByText('Delivered').waitFor();
    await expect.poll(() => page.getByTestId('product-status').textContent()).toBe('Waiting for notification return');
    for (const p of products.slice(0, 2)) {
      const folder = path.join(partner, p.urn.replace(/[^A-Za-z0-9._-]/g, '_'));
      expect(JSON.parse(fs.readFileSync(path.join(folder, 'feature.json'), 'utf8')).payload.urn).toBe(p.urn);
      expect(fs.readFileSync(path.join(folder, 'manifest-sha256.txt'), 'utf8')).toMatch(/^[0-9a-f]{64} {2}feature\.json\n$/);
    }
    await page.screenshot({ path: path.join(artifactsDir, 'disseminations-timeline.png') });

    // manual acknowledgement
    await page.getByTestId('ack').click();
    await expect.poll(() => page.getByTestId('detail-status').textContent()).toBe('Done');
    await timeline.getByText('Acknowledged').waitFor();
    await timeline.getByText('by hand').waitFor();
    await expect.poll(() => page.getByTestId('product-status').textContent()).toBe('Disseminated');

    // filters: status, then text
    await page.getByTestId('filter-status').selectOption('WAITING_ACK');
    await expect.poll(() => page.getByTestId('dis-item').count()).toBe(1);
    await page.getByTestId('filter-status').selectOption('');
    await page.getByTestId('filter-q').fill('SCENE-2024-002');
    await expect.poll(() => page.getByTestId('dis-item').count()).toBe(1);
    await page.getByTestId('filter-q').fill('');
    await page.getByTestId('group-by').selectOption('recipient');
    await expect.poll(() => page.getByTestId('dis-item').count()).toBe(2);
    await page.screenshot({ path: path.join(artifactsDir, 'disseminations-acknowledged.png') });

    // in French
    await page.getByTestId('locale').selectOption('fr');
    await page.getByTestId('dis-status').filter({ hasText: 'En attente de retour de notification' }).first().waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'disseminations-fr.png') });
    await page.getByTestId('locale').selectOption('en');
  }, 120_000);
});
