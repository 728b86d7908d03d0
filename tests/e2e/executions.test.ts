/** Executions in Chromium: a checked upload becomes stored data, followed on the execution timeline. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactsDir, e2eEnabled, openApp, type App } from '../helpers/browser';
import { tempDir, writeTree } from '../helpers/util';

let app: App | undefined;
let page: Page;
const delivery = tempDir('fonds-e2e-exec-');

beforeAll(async () => {
  app = await openApp();
  if (!app) return;
  page = app.page;
  writeTree(delivery, { 'Relevés 1987.pdf': crypto.randomBytes(2 * 1024 * 1024), 'plans/plan-01.tif': crypto.randomBytes(300_000), 'notes.txt': 'à garder' });
}, 120_000);

afterAll(async () => {
  await app?.close();
  fs.rmSync(delivery, { recursive: true, force: true });
});

describe.runIf(e2eEnabled)('executions screen in Chromium', () => {
  it('turns a checked upload into verified stored data and shows the timeline', async () => {
    await page.getByTestId('path-input').fill(delivery);
    await page.getByTestId('path-submit').click();
    await expect.poll(() => page.getByTestId('detail-status').textContent(), { timeout: 30_000 }).toBe('Closed');
    await page.getByTestId('nav-executions').click();
    const name = path.basename(delivery);
    await page.getByTestId(`pick-${name}`).check();
    await page.getByTestId('output-name').fill('Fonds Dupont — relevés');
    await page.getByTestId('launch').click();
    await expect.poll(() => page.getByTestId('execution-status').textContent(), { timeout: 30_000 }).toBe('SUCCESS');
    await expect.poll(() => page.getByTestId('execution-files').textContent()).toContain('3 of 3 verified, 0 failed');
    await page.getByTestId('execution-timeline').getByText('Copied and verified 3/3 files').waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'executions.png') });
  });
});
