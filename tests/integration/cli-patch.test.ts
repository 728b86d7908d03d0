/**
 * `fonds patch`: the dry run prints exactly the message patches.compose makes (read back through
 * composePatch, the function the service uses), a refused request exits 1 naming the field and
 * queues nothing, and without a broker the request waits in the outbox, byte for byte as composed.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { composePatch } from '../../src-main/service/amqp/regards';
import { loadConfig } from '../../src-main/service/config';
import { REGARDS, patchInputSchema, type ComposedPatch } from '../../src-shared/domain/product';
import { repoRoot, tempDirs } from '../helpers/util';

const dir = tempDirs(afterEach);
const URN = 'URN:FEATURE:DATA:project1:87fdda0e-27d1-494f-a1c0-c57f2f0810f7:V1';
const PROPERTIES = { file_characterization: { invalidation_date: '2019-12-03T12:31:42.466Z', valid: false } };

/** The CLI from its sources, with no broker configured whatever the environment says. */
function fonds(dataDir: string, ...args: string[]) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FONDS_')));
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src-main/cli/index.ts'), ...args, '--data-dir', dataDir], {
    encoding: 'utf8',
    timeout: 120_000,
    env,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** What patches.compose makes for this input, with the request id and app id the CLI used. */
function expected(dataDir: string, input: Record<string, unknown>, requestId: string, appId: string): ComposedPatch {
  const config = loadConfig({ env: {}, overrides: { dataDir } });
  return composePatch(patchInputSchema.parse({ tenant: config.regardsTenants[0], ...input, requestId }), {
    owner: config.regardsRequestOwner,
    vhost: config.amqpVhost,
    maxBytes: config.amqpMaxMessageBytes,
    appId,
  });
}

const openDb = (dataDir: string) => new Database(path.join(dataDir, 'fonds.sqlite'), { readonly: true, fileMustExist: true });

describe('fonds patch', () => {
  it('--dry-run --json prints the composed message, and nothing is queued', () => {
    const d = dir();
    const r = fonds(d, 'patch', URN, '--properties', JSON.stringify(PROPERTIES), '--files-mode', 'replace', '--priority', 'HIGH', '--date', '2019-07-04T01:03:00', '--ack-recipient', 'archive-b', '--dry-run', '--json');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const printed = JSON.parse(r.out) as ComposedPatch;
    const want = expected(d, { urn: URN, properties: PROPERTIES, fileUpdateMode: 'REPLACE', priority: 'HIGH', requestDate: '2019-07-04T01:03:00', acknowledgedRecipient: 'archive-b' }, printed.requestId, printed.properties.app_id);
    expect(printed).toEqual(want);
    expect(printed.problems).toEqual([]);
    expect(printed.headers[REGARDS.headers.fileUpdateMode]).toBe('REPLACE');
    expect(JSON.parse(printed.body).metadata).toEqual({ storages: [], priority: 'HIGH', acknowledgedRecipient: 'archive-b' });
    const db = openDb(d);
    try {
      expect(db.prepare('SELECT count(*) FROM outbox').pluck().get()).toBe(0);
      expect(db.prepare('SELECT count(*) FROM patch_requests').pluck().get()).toBe(0);
    } finally {
      db.close();
    }
  });

  it('--dry-run prints the headers and the body exactly, as the seed shows them', () => {
    const d = dir();
    const r = fonds(d, 'patch', URN, '--properties', JSON.stringify(PROPERTIES), '--dry-run');
    expect(r.code).toBe(0);
    const requestId = /^regards\.request\.id=(.+)$/m.exec(r.out)?.[1] ?? '';
    const appId = /app_id=(\S+)/.exec(r.out)?.[1] ?? '';
    const want = expected(d, { urn: URN, properties: PROPERTIES }, requestId, appId);
    const headerLines = Object.entries(want.headers).map(([k, v]) => `${k}=${v}`);
    expect(headerLines).toEqual([`regards.tenant=project1`, `regards.request.id=${requestId}`, 'regards.request.owner=fonds']);
    expect(r.out.endsWith(`# Headers\n${headerLines.join('\n')}\n${want.body}\n`)).toBe(true);
    expect(r.out).toContain(`exchange: ${REGARDS.updateRequestExchange} (virtual host ${want.vhost}`);
  });

  it('exits 1 for an invalid URN, naming the field, one reason a line; nothing is queued', () => {
    const d = dir();
    const r = fonds(d, 'patch', 'URN:FEATURE:DATA:project1:not-a-uuid:V1', '--properties', '{"valid": false}', '--date', 'yesterday');
    expect(r.code).toBe(1);
    const lines = r.out.trim().split('\n');
    expect(lines).toContain('ERROR urn (URN): not a feature URN (URN:FEATURE:DATA:<tenant>:<uuid>:V<n>)');
    expect(lines.some((l) => l.startsWith('ERROR requestDate (--date): not an ISO 8601 date-time'))).toBe(true);
    expect(lines).toHaveLength(2);
    expect(r.err).toMatch(/would be refused \(2 reasons\); nothing was queued/);
  });

  it('exits 1 when there is nothing to patch, and 2 on usage errors', () => {
    const d = dir();
    const empty = fonds(d, 'patch', URN, '--properties', 'not json');
    expect(empty.code).toBe(1);
    expect(empty.out).toMatch(/^ERROR properties \(--properties\): not JSON/m);
    const nothing = fonds(d, 'patch', URN, '--dry-run');
    expect(nothing.code).toBe(1);
    expect(nothing.out).toMatch(/^ERROR feature: nothing to patch/m);
    expect(fonds(d, 'patch').code).toBe(2);
    expect(fonds(d, 'patch', URN, URN).code).toBe(2);
  });

  it('without a broker, queues the request in the outbox exactly as composed', () => {
    const d = dir();
    const r = fonds(d, 'patch', URN, '--properties', JSON.stringify(PROPERTIES), '--tenant', 'project1', '--json');
    expect(r.code).toBe(0);
    const { patch, sent, broker } = JSON.parse(r.out);
    expect(sent).toBe(false);
    expect(broker.state).toBe('not-configured');
    expect(patch).toMatchObject({ direction: 'sent', state: 'QUEUED', urn: URN, tenant: 'project1', outboxStatus: 'pending' });
    const db = openDb(d);
    try {
      const rows = db.prepare('SELECT * FROM outbox').all() as Array<{ id: number; channel: string; destination: string; headers: string; body: string; status: string }>;
      expect(rows).toHaveLength(1);
      const appId = db.prepare(`SELECT value FROM settings WHERE key = 'instance.id'`).pluck().get() as string;
      const want = expected(d, { urn: URN, properties: PROPERTIES }, patch.requestId, `fonds/${appId}`);
      expect(rows[0]).toMatchObject({ id: patch.outboxId, channel: 'amqp', destination: REGARDS.updateRequestExchange, status: 'pending', body: want.body });
      expect(JSON.parse(rows[0].headers)).toEqual(want.headers);
    } finally {
      db.close();
    }
    const text = fonds(d, 'patch', URN, '--properties', '{"valid": true}');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^patch request [0-9a-f-]{36} for URN:FEATURE:DATA:project1:\S+: QUEUED$/m);
    expect(text.out).toMatch(/^waiting in the outbox \(message 2\): no broker is configured \(amqpUrl\)/m);
  });
});
