/**
 * The products screen in Chromium against a real RabbitMQ: a REGARDS client publishes the seed's
 * patch request with a raw amqplib client and the archivist sees the product change and its
 * timeline (GRANTED, then SUCCESS); then composes a patch in the UI, reads the exact message before
 * sending it, and — on a Fonds with no broker — sees it wait in the outbox, and cancels it; edits
 * a waiting one (its body, saved as the outbox then holds it). A message nobody can answer (no
 * request id, not JSON) shows up in the Dead letters tab with its reason as soon as it is recorded.
 * Screenshots in tests/artifacts/products-*.png.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGARDS, type Product } from '../../src-shared/domain/product';
import { artifactsDir, explainFailures, e2eEnabled, openApp, type App } from '../helpers/browser';
import { tempDir, writeTree } from '../helpers/util';
import { RawClient, SEED_URN, amqpUrlOf, brokerAvailable, deleteVhost, ensureVhost, seedExamples } from '../helpers/regards';

const VHOST = `fonds-e2e-products-${process.pid}`;
let online: App | undefined;
let offline: App | undefined;
let raw: RawClient | undefined;
let ready = false;

explainFailures(() => [online, offline]);

beforeAll(async () => {
  if (!e2eEnabled || !(await brokerAvailable())) return;
  await ensureVhost(VHOST);
  online = await openApp(undefined, { FONDS_AMQP_URL: amqpUrlOf(), FONDS_AMQP_VHOST: VHOST });
  offline = await openApp();
  raw = await RawClient.open(VHOST);
  ready = !!online && !!offline;
}, 120_000);

afterAll(async () => {
  await raw?.close();
  await online?.close();
  await offline?.close();
  if (ready) await deleteVhost(VHOST);
}, 60_000);

async function openProducts(page: Page): Promise<void> {
  await page.getByTestId('nav-products').click();
  await page.getByTestId('product-list').waitFor({ state: 'attached' });
}

describe.runIf(e2eEnabled)('products screen in Chromium', () => {
  it('shows a patch request received over AMQP: properties merged, GRANTED then SUCCESS on the timeline', async () => {
    if (!ready) throw new Error('RabbitMQ on 127.0.0.1:5672 is needed for this test');
    const app = online!;
    const page = app.page;
    await app.api<Product>('products.create', {
      urn: SEED_URN,
      providerId: 'Orthophotographie Bodø / Saint-Étienne',
      properties: { file_characterization: { invalidation_date: null, valid: true, format: 'XML' }, title: 'Orthophoto' },
    });
    await openProducts(page);
    await expect.poll(() => page.getByTestId('broker-state').textContent(), { timeout: 20_000 }).toBe('Broker connected');
    await page.getByTestId('product-item').first().click();
    await page.getByTestId('properties').getByText('"XML"').waitFor();

    const [metadataOnly] = seedExamples();
    await raw!.publishRequest(metadataOnly.headers, metadataOnly.body);
    await page.getByTestId('tab-timeline').click();
    const timeline = page.getByTestId('product-timeline');
    await expect.poll(async () => (await timeline.locator('.badge').allTextContents()).join(','), { timeout: 20_000 }).toBe('GRANTED,SUCCESS');
    await timeline.getByText('Product patched: file_characterization.invalidation_date, file_characterization.valid').waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'products-timeline.png') });

    await page.getByTestId('tab-properties').click();
    await page.getByTestId('properties').getByText('"2019-12-03T12:31:42.466Z"').waitFor();
    await expect.poll(() => page.getByTestId('properties').getByText('false').count()).toBe(1);
    await page.screenshot({ path: path.join(artifactsDir, 'products-properties.png') });
  });

  it('shows a message nobody can answer (no request id, not JSON) in the Dead letters tab, with its reason', async () => {
    if (!ready) throw new Error('RabbitMQ on 127.0.0.1:5672 is needed for this test');
    const app = online!;
    const page = app.page;
    await openProducts(page);
    await page.getByTestId('view-deadLetters').click();
    await page.getByTestId('dead-letter-empty').waitFor();
    expect(await page.getByTestId('dead-letter-count').textContent()).toContain('0 dead letter(s)');

    // the pane is open: the dead letter must come to it (pushed), not from a reload of the screen
    const body = 'feature=URN:FEATURE:DATA:project1 <patch> not JSON';
    await raw!.publishRequest({ [REGARDS.headers.tenant]: 'project1', [REGARDS.headers.requestOwner]: 'e2e-sender' }, body);
    const items = page.getByTestId('dead-letter-item');
    await expect.poll(() => items.count(), { timeout: 20_000 }).toBe(1);
    const reason = `${REGARDS.headers.requestId}: missing; nobody to answer`;
    expect(await items.first().textContent()).toContain(reason);
    expect(await page.getByTestId('dead-letter-count').textContent()).toContain('1 dead letter(s)');

    // from the keyboard, as the other lists: the first row is focused, Enter opens it
    await page.getByTestId('dead-letter-list').focus();
    await page.keyboard.press('Enter');
    const detail = page.getByTestId('dead-letter-detail');
    await detail.waitFor();
    expect(await page.getByTestId('dead-letter-reason').textContent()).toBe(reason);
    const [recorded] = (await app.api<{ items: Array<{ queue: string; bodyBytes: number }> }>('amqp.deadLetters', {})).items;
    expect(recorded.bodyBytes).toBe(Buffer.byteLength(body));
    expect(await detail.textContent()).toContain(recorded.queue);
    expect(await page.getByTestId('dead-letter-size').textContent()).toContain(`(${Buffer.byteLength(body)} bytes)`);
    const headers = (await page.getByTestId('dead-letter-headers').textContent()) ?? '';
    expect(headers).toContain(`${REGARDS.headers.tenant}: project1`);
    expect(headers).toContain(`${REGARDS.headers.requestOwner}: e2e-sender`);
    expect(headers).not.toContain(REGARDS.headers.requestId);
    expect(await page.getByTestId('dead-letter-properties').textContent()).toContain('contentType: application/json');
    expect(await page.getByTestId('dead-letter-body').textContent()).toBe(body);
    await page.screenshot({ path: path.join(artifactsDir, 'products-dead-letters.png') });
    await page.getByTestId('view-catalogue').click();
  });

  it('composes a patch, shows the exact headers and body, and with no broker it waits in the outbox', async () => {
    const app = offline!;
    const page = app.page;
    const p = await app.api<Product>('products.create', { providerId: 'Cadastre Tromsø', properties: { title: 'Cadastre' } });
    await openProducts(page);
    await expect.poll(() => page.getByTestId('broker-state').textContent()).toBe('No broker');
    await page.getByTestId('offline-note').waitFor();
    await page.getByTestId('product-item').first().click();
    await page.getByTestId('tab-compose').click();

    // a field that is not JSON is named, nothing is composed
    await page.getByTestId('compose-properties').fill('{"title": ');
    await page.getByTestId('compose-preview').click();
    await expect.poll(() => page.getByTestId('compose-error').textContent()).toContain('not JSON');
    expect(await page.getByTestId('compose-send').isDisabled()).toBe(true);

    await page.getByTestId('compose-properties').fill('{"title": "Cadastre révisé", "edition": {"year": 2026}}');
    await page.getByTestId('compose-priority').selectOption('HIGH');
    await page.getByTestId('compose-mode').selectOption('REPLACE');
    await page.getByTestId('compose-preview').click();
    const headers = page.getByTestId('compose-headers');
    await headers.waitFor();
    const headerText = (await headers.textContent()) ?? '';
    expect(headerText).toContain(`${REGARDS.headers.tenant}: project1`);
    expect(headerText).toContain(`${REGARDS.headers.fileUpdateMode}: REPLACE`);
    expect(headerText).toMatch(new RegExp(`${REGARDS.headers.requestId.replace(/\./g, '\\.')}: [0-9a-f-]{36}`));
    const shown = JSON.parse((await page.getByTestId('compose-body').textContent()) ?? '');
    expect(shown).toEqual({ metadata: { storages: [], priority: 'HIGH' }, feature: { urn: p.urn, properties: { title: 'Cadastre révisé', edition: { year: 2026 } } } });
    await page.screenshot({ path: path.join(artifactsDir, 'products-compose.png') });

    await page.getByTestId('compose-send').click();
    await page.getByTestId('compose-sent').waitFor();
    const waiting = page.getByTestId('waiting-item');
    await expect.poll(() => waiting.count()).toBe(1);
    // what waits is what was shown: the same request id, the same body
    const requestId = /([0-9a-f-]{36})/.exec(headerText)![1];
    expect(await waiting.first().textContent()).toContain(requestId);
    const outbox = await app.api<{ items: Array<{ body: string; headers: Record<string, unknown>; status: string }> }>('outbox.list', {});
    expect(outbox.items).toHaveLength(1);
    expect(JSON.parse(outbox.items[0].body)).toEqual(shown);
    expect(outbox.items[0].headers[REGARDS.headers.requestId]).toBe(requestId);
    await page.screenshot({ path: path.join(artifactsDir, 'products-outbox.png') });

    await page.getByTestId('waiting-cancel').click();
    await expect.poll(() => waiting.count()).toBe(0);
    expect((await app.api<{ items: Array<{ status: string }> }>('outbox.list', {})).items[0].status).toBe('cancelled');
    // the list says so too
    await expect.poll(() => page.getByTestId('product-item').first().locator('.badge').textContent()).toBe('CANCELLED');
  });

  it('publishes a stored data as a product with its files, and notifies the selection to a recipient', async () => {
    const app = offline!;
    const page = app.page;
    const delivery = tempDir('fonds-e2e-delivery-');
    writeTree(delivery, { 'Kart over Tromsø.tif': 'tromsø-bytes', 'notes/lisez-moi.txt': 'à lire' });
    const partner = tempDir('fonds-e2e-partner-');
    const upload = await app.api<{ _id: string }>('uploads.ingestPaths', { paths: [delivery] });
    await expect.poll(async () => (await app.api<{ status: string }>('uploads.get', { id: upload._id })).status, { timeout: 30_000 }).toBe('CLOSED');
    const e = await app.api<{ _id: string }>('executions.create', { processing: 'archive-to-archive', inputs: { upload: [upload._id] }, output: { stored_data: { name: 'Kart Tromsø 2026' } } });
    await app.api('executions.launch', { id: e._id });
    await expect.poll(async () => (await app.api<{ status: string }>('executions.get', { id: e._id })).status, { timeout: 30_000 }).toBe('SUCCESS');
    await app.api('recipients.save', { recipientLabel: 'arkiv-partner', directNotificationEnabled: true, settings: { kind: 'folder', path: partner } });

    await openProducts(page);
    await page.getByTestId('publish-open').click();
    await expect.poll(() => page.getByTestId('publish-stored-data').textContent()).toContain('Kart Tromsø 2026 · 2 file(s) · 20 B');
    await page.getByTestId('publish-submit').click();
    await expect.poll(() => page.getByTestId('product-item').count()).toBe(2);
    await page.getByTestId('product-detail').getByText('Kart Tromsø 2026').first().waitFor();
    await page.getByTestId('tab-files').click();
    await page.getByTestId('files').getByText('Kart over Tromsø.tif').waitFor();
    const sha = (await app.api<{ items: Array<{ path: string; sha256: string }> }>('storedData.files', { id: (await app.api<{ items: Array<{ _id: string }> }>('storedData.list', {})).items[0]._id })).items.find((f) => f.path === 'Kart over Tromsø.tif')!.sha256;
    await page.getByTestId('files').getByText(sha).waitFor();
    await page.screenshot({ path: path.join(artifactsDir, 'products-files.png') });

    // Notify selection: the ticked product only, offered the direct recipient
    await page.getByTestId('product-item').filter({ hasText: 'Kart Tromsø 2026' }).locator('..').getByTestId('product-check').check();
    await page.getByTestId('notify-selection').click();
    await page.getByTestId('notify-dialog').getByText('1 product(s) selected').waitFor();
    await page.getByTestId('notify-recipient').check();
    await page.getByTestId('notify-submit').click();
    await expect.poll(() => page.getByTestId('notify-result').textContent()).toContain('1 dissemination(s) requested');
    await page.getByTestId('notify-close').click();
    // delivered to the folder with its bytes
    await expect.poll(() => fs.readdirSync(partner, { recursive: true }).map(String).some((f) => f.endsWith('Kart over Tromsø.tif')), { timeout: 20_000 }).toBe(true);
    fs.rmSync(partner, { recursive: true, force: true });
    fs.rmSync(delivery, { recursive: true, force: true });
  });

  it('edits a waiting patch request in place: a body that is not JSON is refused and named, the saved body is what the outbox holds', async () => {
    const app = offline!;
    const page = app.page;
    const [product] = (await app.api<{ items: Product[] }>('products.list', { q: 'Cadastre' })).items;
    const queued = await app.api<{ requestId: string; outboxId: number }>('patches.send', { tenant: product.tenant, urn: product.urn, properties: { title: 'Cadastre 2026' } });
    const before = await app.api<{ headers: Record<string, unknown>; body: string }>('outbox.get', { id: queued.outboxId });
    await openProducts(page);
    const item = page.getByTestId('waiting-item').filter({ hasText: queued.requestId });
    await item.waitFor();
    await item.getByTestId('waiting-edit').click();
    const editor = page.getByTestId('waiting-editor');
    await editor.waitFor();
    // the body is shown indented, every value as the outbox holds it
    const body = editor.getByTestId('outbox-body');
    expect(await body.inputValue()).toBe(JSON.stringify(JSON.parse(before.body), null, 2));
    expect(JSON.parse(await editor.getByTestId('outbox-headers').inputValue())).toEqual(before.headers);

    // not JSON: named under the field, nothing saved
    await body.fill('{"metadata": {"storages": [], "priority": "NORMAL"}, "feature": {"properties": {"title": "Cadastre 2026",}}}');
    await editor.getByTestId('outbox-save').click();
    await expect.poll(() => editor.getByTestId('outbox-body-error').textContent()).toContain('not JSON');
    expect(await body.getAttribute('aria-invalid')).toBe('true');
    await page.screenshot({ path: path.join(artifactsDir, 'products-edit-waiting-invalid.png') });
    expect((await app.api<{ body: string }>('outbox.get', { id: queued.outboxId })).body).toBe(before.body);

    // a property changed: saved on one line, as Fonds writes its messages
    const edited = JSON.parse(before.body) as { feature: { properties: Record<string, unknown> } };
    edited.feature.properties.title = 'Cadastre de Tromsø, 2ᵉ édition';
    await body.fill(JSON.stringify(edited, null, 2));
    expect(await editor.getByTestId('outbox-body-error').count()).toBe(0);
    await editor.getByTestId('outbox-save').click();
    await editor.getByTestId('outbox-saved').waitFor();
    const after = await app.api<{ headers: Record<string, unknown>; body: string; status: string }>('outbox.get', { id: queued.outboxId });
    expect(after.body).toBe(JSON.stringify(edited));
    expect(after.headers).toEqual(before.headers);
    expect(after.status).toBe('pending');
    expect(await item.getAttribute('class')).toContain('on');
    await page.screenshot({ path: path.join(artifactsDir, 'products-edit-waiting.png') });
  });
});
