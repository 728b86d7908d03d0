/**
 * `layoutJson`, which the outbox editor uses to show a body indented and save it on one line:
 * the same layout as JSON.stringify, and every token kept as written (a parse would round large
 * integers and rewrite `1.0`, changing a message nobody edited).
 */
import { describe, expect, it } from 'vitest';
import { layoutJson } from '../../src-renderer/format';

const samples: unknown[] = [
  { metadata: { storages: [], priority: 'HIGH' }, feature: { urn: 'URN:FEATURE:DATA:project1:87fdda0e-27d1-494f-a1c0-c57f2f0810f7:V1', properties: { title: 'Bodø, "quoted" \\ , : { } [ ]', n: [1, -2.5e-3, { a: {} }], e: [] } } },
  {},
  [],
  [[[]], {}],
  'a string',
  0,
  null,
  { 'key with \\" and \u00e9 and \n': [true, false, null] },
];

describe('layoutJson', () => {
  it('indents as JSON.stringify(v, null, 2) does, and puts it back on one line as JSON.stringify(v) does', () => {
    for (const v of samples) {
      expect(layoutJson(JSON.stringify(v), 2)).toBe(JSON.stringify(v, null, 2));
      expect(layoutJson(JSON.stringify(v, null, 2), 0)).toBe(JSON.stringify(v));
      expect(layoutJson(JSON.stringify(v, null, 4), 0)).toBe(JSON.stringify(v));
    }
  });

  it('keeps numbers and escapes as written, and drops only the whitespace between tokens', () => {
    const text = '{ "big" : 12345678901234567890123,\r\n\t"one": 1.0, "esc": "\\u00e9\\t \\"{,}\\"" , "list":[ ] }';
    expect(layoutJson(text, 0)).toBe('{"big":12345678901234567890123,"one":1.0,"esc":"\\u00e9\\t \\"{,}\\"","list":[]}');
    expect(layoutJson(text, 2)).toBe('{\n  "big": 12345678901234567890123,\n  "one": 1.0,\n  "esc": "\\u00e9\\t \\"{,}\\"",\n  "list": []\n}');
    expect(JSON.parse(layoutJson(text, 2))).toEqual(JSON.parse(text));
  });
});
