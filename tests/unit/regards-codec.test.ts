/**
 * The REGARDS codecs and patch semantics, without a broker: seed 001's examples read verbatim,
 * every malformed case with its DENIED reason, deep merge, files APPEND / REPLACE.
 */
import { describe, expect, it } from 'vitest';
import { composePatch, parsePatchRequest, parseRequestEvent, requestEvent, type WireMessage } from '../../src-main/service/amqp/regards';
import { mergeFiles, mergeProperties } from '../../src-main/service/products/merge';
import { MAX_PROPERTY_DEPTH, jsonDepth, patchInputSchema, parseIsoDateTime, type FeatureFile } from '../../src-shared/domain/product';
import { SEED_URN, seedExamples } from '../helpers/regards';

const options = { tenants: ['project1'], maxBytes: 4096 };
const ID = '12345463-0f6b-4488-b58c-52af3f7e9563';
const goodHeaders = { 'regards.tenant': 'project1', 'regards.request.id': ID, 'regards.request.owner': 'owner' };
const goodBody = { metadata: { storages: [], priority: 'NORMAL' }, feature: { urn: SEED_URN, properties: { a: 1 } } };

function wire(headers: Record<string, unknown> | undefined, body: unknown, extra: Partial<WireMessage['properties']> = {}): WireMessage {
  const content = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
  return { content, properties: { ...(headers ? { headers } : {}), contentType: 'application/json', ...extra } };
}

function denied(msg: WireMessage, opts = options): string[] {
  const r = parsePatchRequest(msg, opts);
  if (r.kind !== 'denied') throw new Error(`expected DENIED, got ${r.kind}: ${JSON.stringify(r)}`);
  return r.errors;
}

const file = (checksum: string, url: string, filename = 'f.xml'): FeatureFile => ({
  locations: [{ storage: 'S3Server', url }],
  attributes: { dataType: 'RAWDATA', mimeType: 'application/xml', filename, filesize: 100, algorithm: 'MD5', checksum },
});

describe('reading the seed examples verbatim', () => {
  const [metadataOnly, withFiles] = seedExamples();

  it('accepts the metadata-only example: headers, body, NORMAL priority, no files, now', () => {
    const r = parsePatchRequest(wire(metadataOnly.headers, metadataOnly.body), options);
    expect(r.kind).toBe('valid');
    if (r.kind !== 'valid') return;
    expect(r.request).toMatchObject({ requestId: ID, tenant: 'project1', owner: 'owner', urn: SEED_URN, priority: 'NORMAL', fileUpdateMode: 'APPEND', storages: [] });
    expect(r.request.properties).toEqual({ file_characterization: { invalidation_date: '2019-12-03T12:31:42.466Z', valid: false } });
    expect(r.request.files).toBeUndefined();
    expect(r.request.runAt).toBeUndefined();
  });

  it('accepts the files example: APPEND, a date without offset read as UTC, the file and its location', () => {
    const r = parsePatchRequest(wire(withFiles.headers, withFiles.body), options);
    expect(r.kind).toBe('valid');
    if (r.kind !== 'valid') return;
    expect(r.request.fileUpdateMode).toBe('APPEND');
    expect(r.request.fileUpdateModeGiven).toBe(true);
    expect(r.request.requestDate).toBe('2019-07-04T01:03:00');
    expect(r.request.runAt?.toISOString()).toBe('2019-07-04T01:03:00.000Z');
    expect(r.request.files).toEqual([
      {
        locations: [{ storage: 'S3Server', url: 'http://www.test.com/filename.xml' }],
        attributes: { dataType: 'RAWDATA', mimeType: 'application/xml', filename: 'filename', filesize: 100, algorithm: 'MD5', checksum: 'checksum' },
      },
    ]);
  });

  it('accepts them with no content type or encoding, and with byte-array headers', () => {
    const bytes = Object.fromEntries(Object.entries(metadataOnly.headers).map(([k, v]) => [k, Buffer.from(v)]));
    expect(parsePatchRequest({ content: Buffer.from(metadataOnly.body), properties: { headers: bytes } }, options).kind).toBe('valid');
  });
});

describe('refusing malformed requests with every reason (DENIED)', () => {
  it('collects every header problem at once', () => {
    const errors = denied(
      wire(
        {
          'regards.tenant': 'elsewhere',
          'regards.request.id': 'x'.repeat(40),
          'regards.request.owner': 'o'.repeat(129),
          'regards.request.date': 'yesterday',
          'regards.request.file_update_mode': 'MERGE',
        },
        goodBody,
      ),
    );
    expect(errors).toEqual([
      'regards.request.id: longer than 36 characters (40)',
      "regards.tenant: 'elsewhere' is not a known tenant (known: project1)",
      'regards.request.owner: longer than 128 characters (129)',
      "regards.request.date: 'yesterday' is not an ISO 8601 date",
      "regards.request.file_update_mode: 'MERGE' is neither REPLACE nor APPEND",
    ]);
  });

  it('names missing headers and headers of the wrong type', () => {
    expect(denied(wire({ 'regards.request.id': ID }, goodBody))).toEqual(['regards.tenant: missing', 'regards.request.owner: missing']);
    expect(denied(wire({ ...goodHeaders, 'regards.tenant': ['project1'], 'regards.request.owner': 42, 'regards.request.date': true }, goodBody))).toEqual([
      'regards.tenant: must be a string, not a list',
      'regards.request.owner: must be a string, not a number',
      'regards.request.date: must be a string, not a boolean',
    ]);
  });

  it('answers a numeric request id (readable), saying it must be a string', () => {
    const r = parsePatchRequest(wire({ ...goodHeaders, 'regards.request.id': 12345 }, goodBody), options);
    expect(r).toMatchObject({ kind: 'denied', requestId: '12345', errors: ['regards.request.id: must be a string, not a number'] });
  });

  it('refuses a body that is not JSON, not UTF-8, empty, or not an object', () => {
    expect(denied(wire(goodHeaders, '{"metadata": '))[0]).toMatch(/^body: not JSON \(/);
    expect(denied(wire(goodHeaders, Buffer.from([0xff, 0xfe, 0x00])))).toEqual(['body: not UTF-8 text']);
    expect(denied(wire(goodHeaders, ''))).toEqual(['body: empty']);
    expect(denied(wire(goodHeaders, '[1,2]'))).toEqual(['(body): must be a JSON object']);
  });

  it('refuses an oversize body, and a content type or encoding that is not UTF-8 JSON', () => {
    expect(denied(wire(goodHeaders, { ...goodBody, pad: 'x'.repeat(5000) }))).toEqual([expect.stringMatching(/^body: \d+ bytes, over the limit of 4096 bytes/)]);
    expect(denied(wire(goodHeaders, goodBody, { contentType: 'application/xml' }))).toEqual(["content_type: 'application/xml' is not JSON (send application/json)"]);
    expect(denied(wire(goodHeaders, goodBody, { contentEncoding: 'gzip' }))).toEqual(["content_encoding: 'gzip' is not supported (send UTF-8 JSON)"]);
  });

  it('names every body field in error, with its path', () => {
    const errors = denied(
      wire(goodHeaders, {
        metadata: { priority: 'URGENT', acknowledgedRecipient: '' },
        feature: {
          urn: 'URN:FEATURE:DATA:project1:not-a-uuid:V1',
          properties: 'valid=false',
          files: [{ locations: [], attributes: { dataType: 'MOVIE', mimeType: 'xml', filename: '', filesize: -1, algorithm: 'CRC', checksum: 'c' } }],
        },
      }),
    );
    expect(errors).toEqual([
      'metadata.storages: missing',
      'metadata.priority: one of HIGH, NORMAL, LOW',
      'metadata.acknowledgedRecipient: must not be empty',
      'feature.urn: not a feature URN (URN:FEATURE:DATA:<tenant>:<uuid>:V<n>)',
      'feature.properties: must be a JSON object',
      'feature.files[0].locations: at least one location',
      'feature.files[0].attributes.dataType: one of RAWDATA, QUICKLOOK_SD, QUICKLOOK_MD, QUICKLOOK_HD, DOCUMENT, THUMBNAIL, OTHER, AIP, DESCRIPTION',
      'feature.files[0].attributes.mimeType: not a MIME type (type/subtype)',
      'feature.files[0].attributes.filename: must not be empty',
      'feature.files[0].attributes.filesize: negative',
      'feature.files[0].attributes.algorithm: one of MD5, SHA-1, SHA-256, SHA-384, SHA-512',
    ]);
  });

  it('refuses a missing metadata or feature, and properties nested past 64 levels', () => {
    expect(denied(wire(goodHeaders, {}))).toEqual(['metadata: missing', 'feature: missing']);
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 70; i++) deep = { d: deep };
    expect(denied(wire(goodHeaders, { ...goodBody, feature: { urn: SEED_URN, properties: deep } }))).toEqual(['feature.properties: nested deeper than 64 levels']);
  });

  it('keeps the URN and owner it could read, for the answer', () => {
    const r = parsePatchRequest(wire(goodHeaders, { feature: { urn: SEED_URN } }), options);
    expect(r).toMatchObject({ kind: 'denied', requestId: ID, tenant: 'project1', owner: 'owner', urn: SEED_URN, errors: ['metadata: missing'] });
  });
});

describe('messages nobody can be answered for (dead letters)', () => {
  it('has no request id: missing, empty, or of a type that cannot be read', () => {
    expect(parsePatchRequest(wire(undefined, 'not json at all'), options)).toMatchObject({ kind: 'unreadable', reason: 'regards.request.id: missing; nobody to answer' });
    expect(parsePatchRequest(wire({ 'regards.request.id': '  ' }, goodBody), options)).toMatchObject({ kind: 'unreadable', reason: 'regards.request.id: empty; nobody to answer' });
    expect(parsePatchRequest(wire({ 'regards.request.id': { a: 1 } }, goodBody), options)).toMatchObject({
      kind: 'unreadable',
      reason: 'regards.request.id: must be a string, not a table; nobody to answer',
    });
  });
});

describe('answers (FeatureRequestEvent)', () => {
  it('has exactly the seed fields, and the tenant and request id headers', () => {
    const m = requestEvent({ requestId: ID, tenant: 'project1', urn: SEED_URN, owner: 'owner', state: 'GRANTED', errors: [] });
    expect(m.exchange).toBe('regards.broadcast.fr.cnes.regards.modules.feature.dto.event.out.FeatureRequestEvent');
    expect(m.headers).toEqual({ 'regards.tenant': 'project1', 'regards.request.id': ID });
    expect(JSON.parse(m.body)).toEqual({ requestId: ID, type: 'PATCH', urn: SEED_URN, requestOwner: 'owner', state: 'GRANTED', errors: [] });
  });

  it('reads a remote answer, and refuses one without a state', () => {
    const body = { requestId: ID, type: 'PATCH', urn: SEED_URN, requestOwner: 'fonds', state: 'DENIED', errors: ['feature.urn: unknown'] };
    expect(parseRequestEvent(wire({}, body), 4096)).toMatchObject({ kind: 'valid', requestId: ID, state: 'DENIED', errors: ['feature.urn: unknown'] });
    expect(parseRequestEvent(wire({}, { requestId: ID }), 4096)).toMatchObject({ kind: 'unreadable' });
  });
});

describe('composing a patch request to send', () => {
  const ctx = { owner: 'fonds', vhost: 'regards.multitenant.manager', maxBytes: 1 << 20, appId: 'fonds/test' };

  it('puts exactly the seed headers and body on the wire, and reads back valid', () => {
    const input = patchInputSchema.parse({
      tenant: 'project1',
      urn: SEED_URN,
      properties: { file_characterization: { valid: false } },
      files: [file('abc', 'http://x/f.xml')],
      fileUpdateMode: 'APPEND',
      priority: 'HIGH',
      requestDate: '2030-01-01T00:00:00Z',
      acknowledgedRecipient: 'recipient-1',
      requestId: ID,
    });
    const c = composePatch(input, ctx);
    expect(c.problems).toEqual([]);
    expect(c.exchange).toBe('regards.broadcast.fr.cnes.regards.modules.feature.dto.event.in.FeatureUpdateRequestEvent');
    expect(c.headers).toEqual({
      'regards.tenant': 'project1',
      'regards.request.id': ID,
      'regards.request.owner': 'fonds',
      'regards.request.date': '2030-01-01T00:00:00Z',
      'regards.request.file_update_mode': 'APPEND',
    });
    expect(c.properties).toEqual({ content_type: 'application/json', content_encoding: 'UTF-8', delivery_mode: 2, app_id: 'fonds/test' });
    expect(JSON.parse(c.body)).toEqual({
      metadata: { storages: [], priority: 'HIGH', acknowledgedRecipient: 'recipient-1' },
      feature: { urn: SEED_URN, files: [file('abc', 'http://x/f.xml')], properties: { file_characterization: { valid: false } } },
    });
    const back = parsePatchRequest({ content: Buffer.from(c.body), properties: { headers: c.headers, contentType: 'application/json' } }, { tenants: ['project1'], maxBytes: 1 << 20 });
    expect(back.kind).toBe('valid');
  });

  it('lists the problems instead of composing something a catalogue would deny', () => {
    const c = composePatch(patchInputSchema.parse({ tenant: 'project1', urn: SEED_URN, requestId: 'r'.repeat(36) }), ctx);
    expect(c.problems).toEqual(['feature: nothing to patch (give properties, files or an acknowledged recipient)']);
  });
});

describe('deep merge of properties', () => {
  it('merges only what is supplied, nested, and names what changed', () => {
    const before = { file_characterization: { invalidation_date: null, valid: true, keep: 'me' }, title: 'T', tags: ['a', 'b'] };
    const { properties, changed } = mergeProperties(before, { file_characterization: { invalidation_date: '2019-12-03T12:31:42.466Z', valid: false }, tags: ['c'], added: { x: 1 } });
    expect(properties).toEqual({
      file_characterization: { invalidation_date: '2019-12-03T12:31:42.466Z', valid: false, keep: 'me' },
      title: 'T',
      tags: ['c'],
      added: { x: 1 },
    });
    expect(changed).toEqual(['file_characterization.invalidation_date', 'file_characterization.valid', 'tags', 'added']);
    expect(before.file_characterization.valid).toBe(true); // the input is not changed
  });

  it('replaces an object by a value and a value by an object; null is written as null', () => {
    expect(mergeProperties({ a: { b: 1 }, c: 2, d: 1 }, { a: 5, c: { e: 1 }, d: null }).properties).toEqual({ a: 5, c: { e: 1 }, d: null });
  });

  it('never lets __proto__ reach a prototype', () => {
    const patch = JSON.parse('{"__proto__": {"polluted": true}, "x": {"__proto__": {"polluted": true}}}');
    const { properties } = mergeProperties({}, patch);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.parse(JSON.stringify(properties))).toEqual(patch);
  });
});

describe('nesting depth of properties', () => {
  const nest = (n: number, leaf: unknown = 1): unknown => (n === 0 ? leaf : n % 2 ? { k: nest(n - 1, leaf) } : [nest(n - 1, leaf)]);

  it('counts objects and lists, not scalars', () => {
    expect(jsonDepth('x')).toBe(0);
    expect(jsonDepth({})).toBe(1);
    expect(jsonDepth({ a: 1, b: [1, { c: {} }], d: { e: 2 } })).toBe(4);
    expect(jsonDepth(nest(MAX_PROPERTY_DEPTH))).toBe(MAX_PROPERTY_DEPTH);
  });

  it('stops past the limit, however deep the value (no stack exhausted)', () => {
    const hostile = JSON.parse(`${'['.repeat(200_000)}${']'.repeat(200_000)}`);
    expect(jsonDepth(hostile)).toBe(MAX_PROPERTY_DEPTH + 1);
    expect(jsonDepth({ a: nest(MAX_PROPERTY_DEPTH) })).toBe(MAX_PROPERTY_DEPTH + 1);
  });

  it('sees keys such as __proto__ as the plain keys they are in JSON', () => {
    expect(jsonDepth(JSON.parse('{"__proto__": {"x": {"y": {}}}}'))).toBe(4);
  });
});

describe('files: APPEND and REPLACE', () => {
  const a = file('aaa', 'http://s/a.xml', 'a.xml');
  const b = file('bbb', 'http://s/b.xml', 'b.xml');

  it('APPEND adds new files and merges the locations of the same file (same checksum)', () => {
    const aElsewhere = { ...file('AAA', 'http://mirror/a.xml', 'a.xml') };
    const out = mergeFiles([a], [b, aElsewhere], 'APPEND');
    expect(out.map((f) => f.attributes.filename)).toEqual(['a.xml', 'b.xml']);
    expect(out[0].locations.map((l) => l.url)).toEqual(['http://s/a.xml', 'http://mirror/a.xml']);
  });

  it('REPLACE keeps exactly the files supplied; no files supplied changes nothing', () => {
    expect(mergeFiles([a], [b], 'REPLACE')).toEqual([b]);
    expect(mergeFiles([a], [], 'REPLACE')).toEqual([]);
    expect(mergeFiles([a], undefined, 'REPLACE')).toEqual([a]);
    expect(mergeFiles([a], null, 'APPEND')).toEqual([a]);
  });
});

describe('request dates', () => {
  it('reads ISO 8601 with or without offset (UTC), and refuses what does not exist', () => {
    expect(parseIsoDateTime('2019-07-04T01:03:00')?.toISOString()).toBe('2019-07-04T01:03:00.000Z');
    expect(parseIsoDateTime('2019-07-04T01:03:00+02:00')?.toISOString()).toBe('2019-07-03T23:03:00.000Z');
    expect(parseIsoDateTime('2019-12-03T12:31:42.466123Z')?.toISOString()).toBe('2019-12-03T12:31:42.466Z');
    expect(parseIsoDateTime('2019-07-04')?.toISOString()).toBe('2019-07-04T00:00:00.000Z');
    expect(parseIsoDateTime('2019-13-04T00:00:00')).toBeUndefined();
    expect(parseIsoDateTime('04/07/2019')).toBeUndefined();
  });

  it('refuses days a month does not have instead of rolling them over to the next month', () => {
    expect(parseIsoDateTime('2019-02-31T01:03:00')).toBeUndefined(); // would be 2019-03-03
    expect(parseIsoDateTime('2019-02-29')).toBeUndefined(); // 2019 is not a leap year
    expect(parseIsoDateTime('2019-04-31T10:00:00Z')).toBeUndefined();
    expect(parseIsoDateTime('1900-02-29')).toBeUndefined(); // a century, not a leap year
    expect(parseIsoDateTime('2019-07-00')).toBeUndefined();
    expect(parseIsoDateTime('2019-07-04T24:00:00Z')).toBeUndefined();
    expect(parseIsoDateTime('2019-07-04T23:60:00Z')).toBeUndefined();
    expect(parseIsoDateTime('2020-02-29')?.toISOString()).toBe('2020-02-29T00:00:00.000Z');
    expect(parseIsoDateTime('2000-02-29T12:00:00Z')?.toISOString()).toBe('2000-02-29T12:00:00.000Z');
    expect(parseIsoDateTime('2019-04-30T23:59:59Z')?.toISOString()).toBe('2019-04-30T23:59:59.000Z');
    expect(parseIsoDateTime('2019-12-31T23:59:59.999Z')?.toISOString()).toBe('2019-12-31T23:59:59.999Z');
  });

  it('DENIES a patch request whose regards.request.date does not exist, naming the header', () => {
    for (const date of ['2019-02-31T01:03:00', '2019-02-29T00:00:00Z', '2019-06-31']) {
      expect(denied(wire({ ...goodHeaders, 'regards.request.date': date }, goodBody))).toEqual([`regards.request.date: '${date}' is not an ISO 8601 date`]);
    }
    const leap = parsePatchRequest(wire({ ...goodHeaders, 'regards.request.date': '2024-02-29T01:03:00' }, goodBody), options);
    expect(leap.kind === 'valid' && leap.request.runAt?.toISOString()).toBe('2024-02-29T01:03:00.000Z');
  });

  it('composes with the request id and tenant trimmed as a catalogue reads them', () => {
    const ctx = { owner: 'fonds', vhost: 'v', maxBytes: 1 << 20, appId: 'fonds-test' };
    const spaced = composePatch(patchInputSchema.parse({ tenant: ' project1 ', urn: SEED_URN, requestId: ' abc ', properties: { a: 1 } }), ctx);
    expect(spaced.problems).toEqual([]);
    expect(spaced.headers).toMatchObject({ 'regards.tenant': 'project1', 'regards.request.id': 'abc' });
    expect(patchInputSchema.safeParse({ tenant: '   ', urn: SEED_URN }).success).toBe(false);
  });

  it('refuses a date that does not exist in patches.compose input too', () => {
    const base = { urn: SEED_URN, tenant: 'project1', properties: { a: 1 } };
    expect(patchInputSchema.safeParse({ ...base, requestDate: '2019-02-31T01:03:00' }).success).toBe(false);
    expect(patchInputSchema.safeParse({ ...base, requestDate: '2019-03-03T01:03:00' }).success).toBe(true);
  });
});
