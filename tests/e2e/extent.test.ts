/** The extent editor in Chromium: draw with the mouse, save, reload, import the seed example. */
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactsDir, explainFailures, e2eEnabled, openApp, type App } from '../helpers/browser';
import { seedPatchBody, tempDir, writeTree } from '../helpers/util';

let app: App | undefined;
let page: Page;
let storedDataId = '';
const delivery = tempDir('fonds-e2e-extent-');
const api = <T>(name: string, input: unknown) => app!.api<T>(name, input);

async function waitIdle(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 300 && !(await check()); i++) await new Promise((r) => setTimeout(r, 100));
}

explainFailures(() => [app]);

beforeAll(async () => {
  app = await openApp({ width: 1360, height: 900 });
  if (!app) return;
  page = app.page;
  writeTree(delivery, { 'archive.7z': 'opaque archive bytes' });
  const u = await api<{ _id: string }>('uploads.ingestPaths', { paths: [delivery] });
  await waitIdle(async () => (await api<{ status: string }>('uploads.get', { id: u._id })).status === 'CLOSED');
  const e = await api<{ _id: string; output: { stored_data: { _id: string } } }>('executions.create', {
    processing: 'archive-to-archive',
    inputs: { upload: [u._id] },
    output: { stored_data: { name: 'Données départementales' } },
  });
  await api('executions.launch', { id: e._id });
  await waitIdle(async () => (await api<{ status: string }>('executions.get', { id: e._id })).status === 'SUCCESS');
  storedDataId = e.output.stored_data._id;
  await page.reload();
  await page.getByText('Connected').waitFor();
}, 120_000);

afterAll(async () => {
  await app?.close();
  fs.rmSync(delivery, { recursive: true, force: true });
});

describe.runIf(e2eEnabled)('extent editor in Chromium', () => {
  it('draws a polygon with the mouse, saves it, and finds it again after a reload', async () => {
    await page.getByTestId('nav-storedData').click();
    await page.getByTestId('stored-item').filter({ hasText: 'Données départementales' }).click();
    await page.getByTestId('extent-count').getByText('0 / 5000 positions').waitFor();
    await page.getByTestId('extent-mode-draw').click();
    const map = page.getByTestId('extent-map');
    const box = (await map.boundingBox())!;
    const at = (fx: number, fy: number) => ({ x: box.x + box.width * fx, y: box.y + box.height * fy });
    for (const [fx, fy] of [[0.4, 0.35], [0.6, 0.35], [0.6, 0.6]]) {
      const p = at(fx, fy);
      await page.mouse.click(p.x, p.y);
      await page.waitForTimeout(120);
    }
    const last = at(0.4, 0.6);
    await page.mouse.dblclick(last.x, last.y);
    await expect.poll(() => page.getByTestId('extent-count').textContent()).toBe('5 / 5000 positions');
    await page.getByTestId('sd-from').fill('2021-09-01');
    await page.getByTestId('sd-to').fill('2020-01-01');
    await page.getByTestId('sd-to-error').getByText('before the start').waitFor();
    await expect.poll(() => page.getByTestId('sd-save').isDisabled()).toBe(true);
    await page.getByTestId('sd-to').fill('2022-09-30');
    await page.getByTestId('sd-save').click();
    await page.getByTestId('sd-saved').waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'extent-drawn.png') });
    await page.reload();
    await page.getByText('Connected').waitFor();
    await expect.poll(() => page.getByTestId('extent-count').textContent()).toBe('5 / 5000 positions');
    expect(await page.getByTestId('sd-to').inputValue()).toBe('2022-09-30');
    const saved = await api<{ extent: { type: string; coordinates: number[][][][] } }>('storedData.get', { id: storedDataId });
    expect(saved.extent.type).toBe('MultiPolygon');
    expect(saved.extent.coordinates[0][0]).toHaveLength(5);
  });

  it('imports the seed example dropped on the map and saves it', async () => {
    const seed = JSON.stringify(seedPatchBody().extent);
    // a file dropped from the desktop: a drop event carrying a File, built in the page
    await page.getByTestId('extent-map').evaluate((el, text) => {
      const w = el.ownerDocument.defaultView as unknown as {
        DataTransfer: new () => { items: { add(f: unknown): void } };
        File: new (parts: string[], name: string, o: { type: string }) => unknown;
        DragEvent: new (type: string, init: object) => Event;
      };
      const dt = new w.DataTransfer();
      dt.items.add(new w.File([text], 'france.geojson', { type: 'application/geo+json' }));
      el.dispatchEvent(new w.DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, seed);
    await expect.poll(() => page.getByTestId('extent-count').textContent()).toBe('49 / 5000 positions');
    await page.getByTestId('sd-save').click();
    await page.getByTestId('sd-saved').waitFor();
    await page.waitForTimeout(400);
    await page.screenshot({ path: path.join(artifactsDir, 'extent-seed.png') });
    const saved = await api<{ extent: unknown }>('storedData.get', { id: storedDataId });
    expect(saved.extent).toEqual(seedPatchBody().extent);
  });
});
