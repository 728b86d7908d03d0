/**
 * The Messages screen in Chromium against the real `fonds serve`: review the message directory
 * (filters, keyboard, content, attachments, status), the outbox (edit, cancel, send now), and a
 * purge confirmed from its dry-run list. Screenshots land in tests/artifacts/ to be looked at.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactsDir, explainFailures, launchChromium, startServe, type ServeProcess } from '../helpers/browser';
import { tempDir } from '../helpers/util';

let browser: Browser | undefined;
let serve: ServeProcess | undefined;
let page: Page;
const dir = tempDir('fonds-e2e-messages-');

const RULES = `{'Transferts' : {'type' : ['ArchiveTransfer'], 'status' : ['processed', 'rejected', 'invalid'], 'delay' : 'P7D'}}`;

function message(id: string, type: string, date: string, status?: string, extra: Record<string, string> = {}): void {
  fs.mkdirSync(path.join(dir, id), { recursive: true });
  fs.writeFileSync(
    path.join(dir, id, `${id}.xml`),
    `<?xml version="1.0" encoding="UTF-8"?><${type} xmlns="org:afnor:medona:1.0"><Comment>Versement ${id}</Comment><Date>${date}</Date>` +
      `<MessageIdentifier>REF-${id}</MessageIdentifier><ArchivalAgency><Identifier>AD-GIRONDE</Identifier></ArchivalAgency>` +
      `<TransferringAgency><Identifier>SERVICE-ETAT-CIVIL</Identifier></TransferringAgency></${type}>`,
  );
  if (status) fs.writeFileSync(path.join(dir, id, `${id}.status`), status);
  for (const [name, content] of Object.entries(extra)) fs.writeFileSync(path.join(dir, name.startsWith('/') ? name.slice(1) : path.join(id, name)), content);
}

explainFailures(() => [{ page, serve }]);

beforeAll(async () => {
  browser = await launchChromium();
  if (!browser) return;
  message('TR-2021-0001', 'ArchiveTransfer', '2021-02-03T09:00:00Z', 'processed', { 'bordereau.pdf': 'pdf'.repeat(1000), '/TR-2021-0001.zip': 'zip'.repeat(5000) });
  message('TR-2021-0002', 'ArchiveTransfer', '2021-03-04T09:00:00Z', 'rejected');
  message('TR-2022-0003', 'ArchiveTransfer', '2022-01-05T09:00:00Z', 'received');
  message('COM-2023-0001', 'ArchiveDeliveryRequestReply', '2023-06-01T09:00:00Z', 'received');
  message('RES-2024-0001', 'ArchiveRestitution', new Date(Date.now() - 86_400_000).toISOString(), 'processed');
  fs.mkdirSync(path.join(dir, 'BROKEN-1'));
  fs.writeFileSync(path.join(dir, 'BROKEN-1', 'BROKEN-1.xml'), '<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Date>2020');
  serve = await startServe({ FONDS_MESSAGE_DIRECTORY: dir, FONDS_REMOVE_MESSAGE_TASK: RULES });
  // two messages waiting in the outbox (no broker on this machine)
  const db = new Database(path.join(serve.dataDir, 'fonds.sqlite'));
  db.pragma('busy_timeout = 5000');
  const insert = db.prepare(
    `INSERT INTO outbox (channel, destination, headers, body, created_at, next_attempt_at) VALUES ('amqp', ?, ?, ?, ?, ?)`,
  );
  const now = new Date().toISOString();
  insert.run('regards.dissemination.ack', JSON.stringify({ 'regards.request.id': 'REQ-1' }), JSON.stringify({ status: 'SUCCESS' }), now, now);
  insert.run('regards.fem.patch', JSON.stringify({ 'regards.request.id': 'REQ-2' }), JSON.stringify({ mode: 'REPLACE' }), now, now);
  db.close();
  fs.mkdirSync(artifactsDir, { recursive: true });
  page = await browser.newPage({ viewport: { width: 1360, height: 860 } });
  await page.goto(`${serve.url}/#token=${serve.token}`);
  await page.getByText('Connected').waitFor();
  await page.getByTestId('nav-messages').click();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await serve?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function api<T>(name: string, input: unknown): Promise<T> {
  const res = await fetch(`${serve!.url}/api/call/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${serve!.token}` },
    body: JSON.stringify(input),
  });
  const body = (await res.json()) as { result: T };
  return body.result;
}

describe.runIf(fs.existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium') || process.env.CI === 'true')('messages screen in Chromium', () => {
  it('lists the directory, newest first, unreadable messages included', async () => {
    await expect.poll(() => page.getByTestId('message-total').textContent(), { timeout: 20_000 }).toBe('(6)');
    await expect.poll(() => page.getByTestId('message-row').first().getAttribute('data-message-id')).toBe('BROKEN-1'); // dated by its file: now
    await expect.poll(() => page.getByTestId('message-directory').textContent()).toContain(dir);
  });

  it('filters by type and status', async () => {
    await page.getByTestId('filter-type').selectOption('ArchiveTransfer');
    await expect.poll(() => page.getByTestId('message-total').textContent()).toBe('(3)');
    await page.getByTestId('filter-status').selectOption('received');
    await expect.poll(() => page.getByTestId('message-total').textContent()).toBe('(1)');
    await page.getByTestId('filter-clear').click();
    await page.getByTestId('filter-state').selectOption('unparseable');
    await expect.poll(() => page.getByTestId('message-total').textContent()).toBe('(1)');
    // the list reloads after the count: click the row once it shows the filtered message
    await expect.poll(() => page.getByTestId('message-row').first().getAttribute('data-message-id')).toBe('BROKEN-1');
    await page.getByTestId('message-row').first().click();
    await expect.poll(() => page.getByTestId('detail-reason').textContent()).toMatch(/^not well-formed XML: /);
    await page.getByTestId('filter-clear').click();
    await page.getByTestId('filter-from').fill('2021-01-01');
    await page.getByTestId('filter-to').fill('2021-12-31');
    await expect.poll(() => page.getByTestId('message-total').textContent()).toBe('(2)');
    await page.getByTestId('filter-clear').click();
    await expect.poll(() => page.getByTestId('message-total').textContent()).toBe('(6)');
  });

  it('opens a message from the keyboard: content pretty-printed, attachments, and a new status', async () => {
    const list = page.getByTestId('message-list');
    await list.focus();
    // newest first: BROKEN (file date), RES, COM, TR-2022, TR-2021-0002, TR-2021-0001: go to the last
    await page.keyboard.press('End');
    await page.keyboard.press('Enter');
    const detail = page.getByTestId('message-detail');
    await detail.getByRole('heading', { name: 'TR-2021-0001', exact: true }).waitFor();
    await expect.poll(() => page.getByTestId('message-content').textContent()).toContain('  <MessageIdentifier>REF-TR-2021-0001</MessageIdentifier>');
    await expect.poll(() => page.getByTestId('attachments').textContent()).toContain('TR-2021-0001.zip');
    await expect.poll(() => detail.textContent()).toContain('SERVICE-ETAT-CIVIL');
    await page.screenshot({ path: path.join(artifactsDir, 'messages.png') });
    await page.getByTestId('status-select').selectOption('invalid');
    await page.getByTestId('status-apply').click();
    await expect.poll(() => page.getByTestId('detail-status').textContent()).toBe('invalid');
    await expect.poll(() => page.getByTestId('message-timeline').textContent()).toContain('Status processed → invalid (set by a reviewer)');
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'TR-2021-0001', 'TR-2021-0001.status'), 'utf8')).status).toBe('invalid');
  });

  it('reviews the outbox offline: edit before sending, cancel, send now', async () => {
    await page.getByTestId('tab-messages').focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.getByTestId('tab-outbox').getAttribute('aria-selected')).toBe('true');
    await expect.poll(() => page.getByTestId('outbox-row').count()).toBe(2);
    await page.getByTestId('outbox-row').filter({ hasText: 'regards.fem.patch' }).click();
    await page.getByTestId('outbox-body').fill('{"mode":"APPEND"}');
    await page.getByTestId('outbox-save').click();
    await expect.poll(async () => (await api<{ body: string }>('outbox.get', { id: 2 })).body).toBe('{"mode":"APPEND"}');
    await page.getByTestId('outbox-cancel').click();
    await expect.poll(() => page.getByTestId('outbox-status').textContent()).toBe('cancelled');
    await page.getByTestId('outbox-send').click();
    await expect.poll(() => page.getByTestId('outbox-status').textContent()).toBe('waiting');
    await page.screenshot({ path: path.join(artifactsDir, 'messages-outbox.png') });
  });

  it('purges only after showing the dry-run list and getting a confirmation', async () => {
    await page.getByTestId('tab-purge').click();
    await page.getByTestId('rule-tasks').getByText('Transferts').waitFor();
    await page.getByTestId('purge-preview').click();
    await expect.poll(() => page.getByTestId('purge-item').count()).toBe(2);
    await expect.poll(() => page.getByTestId('purge-preview-list').textContent()).toContain('TR-2021-0001');
    await expect.poll(() => page.getByTestId('purge-totals').textContent()).toMatch(/^2 messages, /);
    expect(fs.existsSync(path.join(dir, 'TR-2021-0001'))).toBe(true); // a dry run deletes nothing
    expect(await page.getByTestId('purge-confirm').isDisabled()).toBe(true);
    await page.screenshot({ path: path.join(artifactsDir, 'messages-purge.png') });
    // a transfer that becomes purgeable after the preview was shown is not part of what is confirmed
    message('TR-2020-LATE', 'ArchiveTransfer', '2020-05-05T09:00:00Z', 'processed');
    await expect.poll(async () => (await api<{ total: number }>('messages.list', { q: 'TR-2020-LATE' })).total).toBe(1);
    const sent: unknown[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith('/api/call/purge.run')) sent.push(r.postDataJSON());
    });
    await expect.poll(() => page.getByTestId('purge-scope').textContent()).toContain('Only the messages of this preview are deleted');
    await page.getByTestId('purge-confirm-check').check();
    await page.getByTestId('purge-confirm').click();
    await expect.poll(() => page.getByTestId('purge-result').textContent()).toContain('2 messages deleted');
    expect(sent).toEqual([{ dryRun: false, confirm: expect.any(String), limit: 10_000 }]);
    expect(fs.readdirSync(dir).sort()).toEqual(['BROKEN-1', 'COM-2023-0001', 'RES-2024-0001', 'TR-2020-LATE', 'TR-2022-0003']);
    await page.getByTestId('tab-messages').click();
    await expect.poll(() => page.getByTestId('message-total').textContent()).toBe('(5)');
  });

  it('speaks French', async () => {
    await page.getByTestId('locale').selectOption('fr');
    await page.getByText('Répertoire des messages').waitFor();
    await page.getByTestId('locale').selectOption('en');
  });
});
