import { afterEach, describe, expect, it } from 'vitest';
import type { Service } from '../../src-main/service';
import { startHttpServer } from '../../src-main/transport/http';
import { seedPatchBody, startService, tempDirs, writeTree } from '../helpers/service';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const dir = tempDirs(afterEach);

async function storedData(): Promise<{ s: Service; id: string }> {
  const { service: s, dispose } = await startService();
  cleanups.push(dispose);
  const root = dir();
  writeTree(root, { 'archive.zip': 'zip bytes' });
  const u = await s.call('uploads.ingestPaths', { paths: [root] });
  await s.idle();
  const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'Données départementales', storage_tags: ['ARCHIVE'] } } });
  await s.call('executions.launch', { id: e._id });
  await s.idle();
  return { s, id: e.output.stored_data._id };
}

describe('a patch naming a read-only field', () => {
  it('is refused with INVALID_INPUT naming each read-only field, and changes nothing', async () => {
    const { s, id } = await storedData();
    const before = await s.call('storedData.get', { id });
    const patch = {
      id,
      description: 'Relevés',
      _id: 'another-id',
      type: 'VECTOR',
      status: 'DELETED',
      size: 0,
      storage: { type: 'S3', labels: [] },
      type_infos: { files_number: 0 },
      verified: false,
      creation: '2020-01-01T00:00:00.000Z',
      last_event: { title: 'Création', date: '2020-01-01T00:00:00.000Z' },
      contact: 'contact@ign.fr',
    };
    const readOnly = ['_id', 'type', 'status', 'size', 'storage', 'type_infos', 'verified', 'creation', 'last_event', 'contact'];
    const refused = await s.call('storedData.patch', patch).then(
      () => undefined,
      (err: unknown) => err as { code: string; message: string; details: { issues: Array<{ field: string; message: string }> } },
    );
    expect(refused?.code).toBe('INVALID_INPUT');
    expect(refused!.details.issues.map((i) => i.field).sort()).toEqual([...readOnly].sort());
    for (const f of readOnly) expect(refused!.message).toContain(`${f}: read-only`);
    expect(await s.call('storedData.get', { id })).toEqual(before);
    expect((await s.call('storedData.timeline', { id })).items.filter((e) => e.type === 'metadata.changed')).toEqual([]);
  });

  it('is a 400 over HTTP: a stored data read with GET cannot be sent back whole', async () => {
    const { s, id } = await storedData();
    const srv = await startHttpServer({ service: s, host: '127.0.0.1', port: 0, token: s.token, maxBodyBytes: 1 << 20 });
    cleanups.push(() => srv.close());
    const url = `${srv.url}/api/datastores/default/stored_data/${id}`;
    const h = { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' };
    const got = (await (await fetch(url, { headers: h })).json()) as Record<string, unknown>;
    const res = await fetch(url, { method: 'PATCH', headers: h, body: JSON.stringify({ ...got, edition: { from: '2021-09-01' } }) });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe('INVALID_INPUT');
    expect(error.message).toContain('status: read-only');
    expect(error.message).toContain('_id: read-only');
    expect((await s.call('storedData.get', { id })).edition).toBeUndefined();
  });
});

describe('clearing edition dates', () => {
  it('clears one date or both with null, records it, and still checks what remains', async () => {
    const { s, id } = await storedData();
    await s.call('storedData.patch', { id, edition: { from: '2021-09-01', to: '2022-09-30' } });
    expect((await s.call('storedData.patch', { id, edition: { to: null } })).edition).toEqual({ from: '2021-09-01' });
    await expect(s.call('storedData.patch', { id, edition: { from: null, to: '2022-02-30' } })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: "edition.to: '2022-02-30' is not a date (YYYY-MM-DD).",
    });
    expect((await s.call('storedData.get', { id })).edition).toEqual({ from: '2021-09-01' });
    const cleared = await s.call('storedData.patch', { id, edition: null });
    expect(cleared.edition).toBeUndefined();
    expect(cleared).not.toHaveProperty('edition');
    const events = (await s.call('storedData.timeline', { id })).items.filter((e) => e.type === 'metadata.changed');
    expect(events.map((e) => e.payload)).toMatchObject([
      { fields: ['edition'], before: { edition: { from: '2021-09-01' } }, after: { edition: null } },
      { fields: ['edition'], before: { edition: { from: '2021-09-01', to: '2022-09-30' } }, after: { edition: { from: '2021-09-01' } } },
      { fields: ['edition'], before: { edition: null }, after: { edition: { from: '2021-09-01', to: '2022-09-30' } } },
    ]);
  });

  it('clears them over HTTP with the seed body shape', async () => {
    const { s, id } = await storedData();
    const srv = await startHttpServer({ service: s, host: '127.0.0.1', port: 0, token: s.token, maxBodyBytes: 1 << 20 });
    cleanups.push(() => srv.close());
    const url = `${srv.url}/api/datastores/default/stored_data/${id}`;
    const h = { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' };
    await fetch(url, { method: 'PATCH', headers: h, body: JSON.stringify({ edition: seedPatchBody().edition }) });
    const res = await fetch(url, { method: 'PATCH', headers: h, body: JSON.stringify({ edition: { from: null, to: null } }) });
    expect(res.status).toBe(200);
    expect(await res.json()).not.toHaveProperty('edition');
  });
});

describe('last_event', () => {
  it('is titled as the seed titles it, and a metadata patch leaves it as it was', async () => {
    const { s, id } = await storedData();
    const generating = (await s.call('storedData.timeline', { id })).items.find((e) => e.type === 'status.GENERATING')!;
    const sd = await s.call('storedData.get', { id });
    expect(sd.status).toBe('GENERATED');
    expect(sd.last_event).toEqual({ title: 'Génération', date: generating.time });
    // seed 002: the answer to the PATCH of edition and extent still shows "Génération"
    const patched = await s.call('storedData.patch', { id, ...seedPatchBody() });
    expect(patched.last_event).toEqual({ title: 'Génération', date: generating.time });
  });

  it('is "Création" for a stored data no execution has generated yet', async () => {
    const { service: s, dispose } = await startService();
    cleanups.push(dispose);
    const root = dir();
    writeTree(root, { 'a.txt': 'a' });
    const u = await s.call('uploads.ingestPaths', { paths: [root] });
    await s.idle();
    const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'Plans' } } });
    const sd = await s.call('storedData.get', { id: e.output.stored_data._id });
    expect(sd.status).toBe('CREATED');
    expect(sd.last_event).toEqual({ title: 'Création', date: sd.creation });
  });
});

describe('stored-data metadata', () => {
  it('PATCH stored_data/{id} takes the seed body exactly as written', async () => {
    const { s, id } = await storedData();
    const srv = await startHttpServer({ service: s, host: '127.0.0.1', port: 0, token: s.token, maxBodyBytes: 1 << 20 });
    cleanups.push(() => srv.close());
    const body = seedPatchBody();
    const res = await fetch(`${srv.url}/api/datastores/default/stored_data/${id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${s.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(200);
    const sd = (await res.json()) as { edition: unknown; extent: unknown; status: string; tags: unknown; last_event: unknown };
    expect(sd.edition).toEqual({ from: '2021-09-01', to: '2022-09-30' });
    expect(sd.extent).toEqual(body.extent);
    expect(sd.status).toBe('GENERATED');
    // the seed's answer: storage_tags ["ARCHIVE"] in the execution did not make tags, and the last event is the generation
    expect(sd).toMatchObject({ tags: {}, last_event: { title: 'Génération' } });
  });

  it('records every change with who, before and after', async () => {
    const { s, id } = await storedData();
    await s.call('storedData.patch', { id, description: 'Relevés', tags: { theme: 'cadastre' } }, { transport: 'cli' });
    await s.call('storedData.patch', { id, edition: { from: '2021-01-01' } }, { transport: 'cli' });
    const events = (await s.call('storedData.timeline', { id })).items.filter((e) => e.type === 'metadata.changed');
    expect(events).toHaveLength(2);
    expect(events[1].payload).toMatchObject({ fields: ['description', 'tags'], before: { description: null, tags: {} }, after: { description: 'Relevés', tags: { theme: 'cadastre' } } });
    expect(events[1].payload.who).toMatch(/\(cli\)$/);
    expect(events[0].payload).toMatchObject({ fields: ['edition'], after: { edition: { from: '2021-01-01' } } });
  });

  it('promotes a Polygon to a MultiPolygon, and refuses a bad extent or dates with the reason, changing nothing', async () => {
    const { s, id } = await storedData();
    const square = [[[2, 46], [3, 46], [3, 47], [2, 47], [2, 46]]];
    const sd = await s.call('storedData.patch', { id, extent: { type: 'Polygon', coordinates: square } });
    expect(sd.extent).toEqual({ type: 'MultiPolygon', coordinates: [square] });
    const bowtie = [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]];
    await expect(s.call('storedData.patch', { id, extent: { type: 'Polygon', coordinates: bowtie }, description: 'x' })).rejects.toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringContaining('crosses itself at 1.00000° N, 1.00000° E'),
    });
    await expect(s.call('storedData.patch', { id, edition: { from: '2022-09-30', to: '2021-09-01' } })).rejects.toMatchObject({
      message: 'edition.to: The end (2021-09-01) is before the start (2022-09-30).',
    });
    const after = await s.call('storedData.get', { id });
    expect(after.extent).toEqual({ type: 'MultiPolygon', coordinates: [square] });
    expect(after.description).toBeUndefined();
    expect((await s.call('storedData.patch', { id, extent: null })).extent).toBeUndefined();
  });
});
