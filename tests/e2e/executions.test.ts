/**
 * Executions in Chromium, as an archivist would: a checked upload becomes verified stored data,
 * followed live on the execution timeline; a run is cancelled and resumed; a file that changed
 * since its check fails with the reason and is retried. Screenshots in tests/artifacts/.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactsDir, explainFailures, e2eEnabled, openApp, type App } from '../helpers/browser';
import { tempDir, writeTree } from '../helpers/util';

let app: App | undefined;
let page: Page;
const delivery = tempDir('fonds-e2e-exec-');
const large = tempDir('fonds-e2e-large-');
const changing = tempDir('fonds-e2e-changing-');

explainFailures(() => [app]);

beforeAll(async () => {
  app = await openApp();
  if (!app) return;
  page = app.page;
  writeTree(delivery, { 'Relevés 1987.pdf': crypto.randomBytes(2 * 1024 * 1024), 'plans/plan-01.tif': crypto.randomBytes(300_000), 'notes.txt': 'à garder' });
  // a large file (sparse: quick to make, as long to copy as any other)
  writeTree(large, { 'small-1.txt': 'one', 'small-2.txt': 'two' });
  fs.closeSync(fs.openSync(path.join(large, 'scan-archive.tar'), 'w'));
  fs.truncateSync(path.join(large, 'scan-archive.tar'), 1.5 * 1024 ** 3);
  writeTree(changing, { 'acte-1.xml': '<acte n="1"/>', 'acte-2.xml': '<acte n="2"/>' });
}, 120_000);

afterAll(async () => {
  await app?.close();
  for (const d of [delivery, large, changing]) fs.rmSync(d, { recursive: true, force: true });
});

async function checkUpload(folder: string): Promise<void> {
  await page.getByTestId('nav-uploads').click();
  await page.getByTestId('path-input').fill(folder);
  await page.getByTestId('path-submit').click();
  // this upload's own item: the detail may still show the one selected before
  await page.getByTestId('upload-item').filter({ hasText: path.basename(folder) }).getByText('Closed').waitFor({ timeout: 60_000 });
}

async function launch(folder: string, storedDataName: string): Promise<void> {
  await page.getByTestId('nav-executions').click();
  await page.getByTestId(`pick-${path.basename(folder)}`).check();
  await page.getByTestId('output-name').fill(storedDataName);
  await page.getByTestId('launch').click();
}

describe.runIf(e2eEnabled)('executions screen in Chromium', () => {
  it('turns a checked upload into verified stored data and shows the timeline and the stored files', async () => {
    await checkUpload(delivery);
    await launch(delivery, 'Fonds Dupont — relevés');
    await expect.poll(() => page.getByTestId('execution-status').textContent(), { timeout: 30_000 }).toBe('SUCCESS');
    await expect.poll(() => page.getByTestId('execution-files').textContent()).toContain('3 of 3 verified, 0 failed');
    await page.getByTestId('execution-timeline').getByText('Copied and verified 3/3 files').waitFor();
    await page.getByTestId('execution-timeline').getByText('Status: SUCCESS').waitFor();
    await expect.poll(() => page.getByTestId('stored-data-status').textContent()).toBe('GENERATED');
    await page.getByTestId('stored-data').getByText('fixity verified').waitFor();
    await page.getByTestId('stored-files').getByText('Relevés 1987.pdf').waitFor();
    await page.getByTestId('stored-files').getByText('plans/plan-01.tif').waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'executions.png') });
  });

  it('follows a running copy live, cancels it, and a retry copies what was left', async () => {
    await checkUpload(large);
    await launch(large, 'Numérisations');
    await page.getByTestId('execution-live').waitFor({ timeout: 30_000 });
    // bytes of the large file move while it is read, not only once it is done
    await expect.poll(() => page.getByTestId('execution-live').textContent(), { timeout: 30_000 }).toMatch(/· [\d.]+ (MB|GB) of 1\.6 GB/);
    await page.screenshot({ path: path.join(artifactsDir, 'executions-live.png') });
    await page.getByTestId('cancel').click();
    await expect.poll(() => page.getByTestId('execution-status').textContent(), { timeout: 30_000 }).toBe('FAILURE');
    await expect.poll(() => page.getByTestId('execution-reason').textContent()).toContain('Cancelled by the user');
    await expect.poll(() => page.getByTestId('stored-data-status').textContent()).toBe('UNSTABLE');
    await page.screenshot({ path: path.join(artifactsDir, 'executions-cancelled.png') });
    await page.getByTestId('retry').click();
    await expect.poll(() => page.getByTestId('execution-status').textContent(), { timeout: 60_000 }).toBe('SUCCESS');
    await expect.poll(() => page.getByTestId('execution-files').textContent()).toContain('3 of 3 verified, 0 failed');
    await page.getByTestId('execution-timeline').getByText(/Copying \d file\(s\) again/).waitFor();
  });

  it('fails a file that changed since its check, with the reason, and retries it once restored', async () => {
    await checkUpload(changing);
    fs.writeFileSync(path.join(changing, 'acte-2.xml'), '<acte n="2" modifié="oui"/>');
    await launch(changing, 'Actes');
    await expect.poll(() => page.getByTestId('execution-status').textContent(), { timeout: 30_000 }).toBe('FAILURE');
    await page.getByTestId('failed-files').getByText('the delivered file changed since it was checked (now 28 bytes, SHA-256').waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'executions-failed.png') });
    fs.writeFileSync(path.join(changing, 'acte-2.xml'), '<acte n="2"/>');
    await page.getByTestId('retry').click();
    await expect.poll(() => page.getByTestId('execution-status').textContent(), { timeout: 30_000 }).toBe('SUCCESS');
  });
});
