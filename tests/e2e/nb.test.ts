/**
 * The NB orders screen in Chromium: a dissemination served to an NB client (POST /v1/disseminations
 * with the main token), then an order placed from the form with this same Fonds as the service,
 * followed to DISSEMINATED with its link. Screenshots in tests/artifacts/nb-*.png.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Execution, Upload } from '../../src-shared/api';
import { artifactsDir, explainFailures, e2eEnabled, openApp, type App } from '../helpers/browser';
import { tempDir, waitFor, writeTree } from '../helpers/util';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are checked field by field
type Json = any;

let app: App | undefined;
let page: Page;
const delivery = tempDir('fonds-e2e-nb-');
let archiveId = '';

explainFailures(() => [app]);

beforeAll(async () => {
  app = await openApp();
  if (!app) return;
  page = app.page;
  writeTree(delivery, { 'page-001.tif': Buffer.alloc(300_000, 7), 'page-002.tif': Buffer.alloc(200_000, 9), 'mets.xml': '<mets/>' });
  const u = await app.api<Upload>('uploads.ingestPaths', { paths: [delivery], name: 'digifoto_5584a028' });
  await waitFor(() => app!.api<Upload>('uploads.get', { id: u._id }), (x) => x.status === 'CLOSED');
  const e = await app.api<Execution>('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'digifoto_5584a028', storage_tags: [] } } });
  await app.api('executions.launch', { id: e._id });
  await waitFor(() => app!.api<Execution>('executions.get', { id: e._id }), (x) => x.status === 'SUCCESS');
  archiveId = e.output.stored_data._id;
}, 120_000);

afterAll(async () => {
  await app?.close();
  fs.rmSync(delivery, { recursive: true, force: true });
});

describe.runIf(e2eEnabled)('NB orders screen in Chromium', () => {
  it('lists served disseminations with their status flow, and orders one through the form', async () => {
    const { url, token } = app!.serve;
    const res = await fetch(`${url}/v1/disseminations`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ archiveId, priority: 80 }) });
    expect(res.status).toBe(201);
    const served = (await res.json()) as { disseminationId: string };
    await waitFor(async () => ((await (await fetch(`${url}/v1/disseminations/${served.disseminationId}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Json).status, (s) => s === 'DISSEMINATED');

    await page.getByTestId('nav-nb').click();
    await expect.poll(() => page.getByTestId('nb-served-item').count()).toBe(1);
    await page.getByTestId('nb-served-item').click();
    const detail = page.getByTestId('nb-detail');
    await detail.getByText('Download link issued').waitFor();
    await expect.poll(() => detail.locator('.badge.big').textContent()).toBe('DISSEMINATED');
    await page.screenshot({ path: path.join(artifactsDir, 'nb-served.png') });

    // order from a service (this Fonds itself): the form, then polling until DISSEMINATED
    await page.getByTestId('nb-order-open').click();
    await page.getByTestId('nb-base-url').fill(url);
    await page.getByTestId('nb-token').fill(token);
    await page.getByTestId('nb-archive-id').fill(archiveId);
    await page.getByTestId('nb-priority').fill('70');
    await page.screenshot({ path: path.join(artifactsDir, 'nb-order-form.png') });
    await page.getByTestId('nb-order-submit').click();
    await expect.poll(() => page.getByTestId('nb-order-item').count()).toBe(1);
    await expect.poll(() => detail.locator('.badge.big').textContent(), { timeout: 30_000 }).toBe('DISSEMINATED');
    await detail.getByText('Download link fetched').waitFor({ timeout: 15_000 });
    await page.getByTestId('nb-link').click();
    await expect.poll(() => page.getByTestId('nb-link-url').textContent()).toBe('Kept link (still valid)');
    const body = await page.locator('body').textContent();
    expect(body).not.toContain(token);
    await page.screenshot({ path: path.join(artifactsDir, 'nb-orders.png') });
  });
});
