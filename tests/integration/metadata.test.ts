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
  const e = await s.call('executions.create', { processing: 'archive-to-archive', inputs: { upload: [u._id] }, output: { stored_data: { name: 'Données départementales' } } });
  await s.call('executions.launch', { id: e._id });
  await s.idle();
  return { s, id: e.output.stored_data._id };
}

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
    const sd = (await res.json()) as { edition: unknown; extent: unknown; status: string };
    expect(sd.edition).toEqual({ from: '2021-09-01', to: '2022-09-30' });
    expect(sd.extent).toEqual(body.extent);
    expect(sd.status).toBe('GENERATED');
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
