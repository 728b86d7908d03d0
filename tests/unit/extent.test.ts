import type { Position } from 'geojson';
import { describe, expect, it } from 'vitest';
import { countPositions, MAX_EXTENT_POSITIONS, simplifyToFit, validateEdition, validateExtent } from '../../src-shared/domain/extent';
import { seedPatchBody } from '../helpers/util';

/** A circle-ish polygon with n distinct vertices (n + 1 positions, closed). */
function circle(n: number, cx = 2, cy = 46, r = 1): Position[] {
  const ring: Position[] = [];
  for (let i = 0; i < n; i++) ring.push([cx + r * Math.cos((2 * Math.PI * i) / n), cy + r * Math.sin((2 * Math.PI * i) / n)]);
  ring.push(ring[0]);
  return ring;
}

describe('extent validation', () => {
  it('accepts the seed example (Corsica + mainland France) as is', () => {
    const body = seedPatchBody();
    const r = validateExtent(body.extent);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.positions).toBe(10 + 39);
    expect(validateEdition(body.edition)).toEqual({});
  });

  it('promotes a Polygon to a MultiPolygon', () => {
    const r = validateExtent({ type: 'Polygon', coordinates: [circle(8)] });
    expect(r.ok && r.extent.type).toBe('MultiPolygon');
    expect(r.ok && r.extent.coordinates).toHaveLength(1);
  });

  it('reports unclosed and short rings, and positions out of range, with where they are', () => {
    const r = validateExtent({
      type: 'MultiPolygon',
      coordinates: [
        [[[0, 0], [1, 0], [1, 1], [0, 1]]],
        [[[0, 0], [1, 1], [0, 0]]],
        [[[0, 0], [200, 0], [1, 95], [0, 0]]],
      ],
    });
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => `${p.rule} ${p.path}`)).toEqual([
      'ring-not-closed coordinates[0][0]',
      'ring-too-short coordinates[1][0]',
      'longitude-out-of-range coordinates[2][0][1]',
      'latitude-out-of-range coordinates[2][0][2]',
    ]);
    expect(r.problems[0].message).toContain('Polygon 1, outer ring is not closed');
  });

  it('finds a self-intersection and says where', () => {
    const bowtie = [[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]];
    const r = validateExtent({ type: 'Polygon', coordinates: [bowtie] });
    expect(r.ok).toBe(false);
    const p = r.problems.find((x) => x.rule === 'self-intersection')!;
    expect(p.at).toEqual([1, 1]);
    expect(p.message).toContain('crosses itself at 1.00000° N, 1.00000° E');
  });

  it('refuses a ring that jumps across the antimeridian, saying how to fix it', () => {
    const fiji = [[179, -17], [-179, -17], [-179, -16], [179, -16], [179, -17]];
    const r = validateExtent({ type: 'Polygon', coordinates: [fiji] });
    expect(r.problems.map((p) => p.rule)).toEqual(['crosses-antimeridian']);
    expect(r.problems[0].message).toMatch(/split it into two polygons/);
  });

  it('rejects 5001 positions, then simplification brings it under 5000 and it is accepted', () => {
    const big = { type: 'Polygon', coordinates: [circle(5000)] };
    const r = validateExtent(big);
    expect(r.positions).toBe(5001);
    expect(r.problems.map((p) => p.rule)).toEqual(['too-many-positions']);
    expect(r.problems[0].message).toContain('5001 positions; at most 5000');
    const fit = simplifyToFit(r.extent!);
    expect(fit.positions).toBeLessThanOrEqual(MAX_EXTENT_POSITIONS);
    expect(fit.positions).toBeGreaterThan(100);
    expect(countPositions(fit.extent)).toBe(fit.positions);
    expect(validateExtent(fit.extent).ok).toBe(true);
  });

  it('stops at 21 crossings: a 5000-position star (12 million of them) is refused at once, in bounded memory', () => {
    const n = 4999;
    const star: Position[] = Array.from({ length: n }, (_, i) => {
      const k = (i * 2499) % n;
      return [2 + Math.cos((2 * Math.PI * k) / n), 46 + Math.sin((2 * Math.PI * k) / n)];
    });
    star.push(star[0]);
    const r = validateExtent({ type: 'Polygon', coordinates: [star] });
    const crossingProblems = r.problems.filter((p) => p.rule === 'self-intersection');
    expect(crossingProblems).toHaveLength(21);
    expect(crossingProblems[20].message).toMatch(/more than 20 times/);
    // past the limit, only the count is reported: no geometry on what cannot be stored
    const big = validateExtent({ type: 'Polygon', coordinates: [circle(25_000)] });
    expect(big.problems.map((p) => p.rule)).toEqual(['too-many-positions']);
  });

  it('takes a repeated position, refuses rings with no area, holes outside their shell and absurd nesting', () => {
    const sq = (x: number, y: number, s = 1): Position[] => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]];
    expect(validateExtent({ type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 0], [1, 1], [0, 0]]] }).problems).toEqual([]);
    expect(validateExtent({ type: 'Polygon', coordinates: [[[0, 0], [1, 0], [2, 0], [0, 0]]] }).problems.map((p) => p.rule)).toContain('ring-too-short');
    expect(validateExtent({ type: 'Polygon', coordinates: [[[0, 0], [1, 1], [0, 0], [0, 0]]] }).ok).toBe(false);
    const outside = validateExtent({ type: 'Polygon', coordinates: [sq(0, 0), sq(5, 5)] });
    expect(outside.problems.map((p) => p.message)).toEqual([expect.stringMatching(/hole 1 is not inside the outer ring/)]);
    expect(validateExtent({ type: 'Polygon', coordinates: [sq(0, 0, 4), sq(1, 1)] }).ok).toBe(true);
    let nested: unknown = { type: 'Polygon', coordinates: [sq(0, 0)] };
    for (let i = 0; i < 30_000; i++) nested = { type: 'Feature', geometry: nested };
    expect(validateExtent(nested).problems[0]).toMatchObject({ rule: 'not-geojson', message: expect.stringMatching(/more than 4 deep/) });
  });

  it('refuses what is not a polygon', () => {
    expect(validateExtent({ type: 'Point', coordinates: [1, 2] }).problems[0].rule).toBe('unsupported-type');
    expect(validateExtent('nope').problems[0].rule).toBe('not-geojson');
    expect(validateExtent({ type: 'MultiPolygon', coordinates: [] }).problems[0].rule).toBe('empty');
  });
});

describe('edition dates', () => {
  it('wants ISO dates with from before to', () => {
    expect(validateEdition({ from: '2022-09-30', to: '2021-09-01' })).toEqual({ to: 'The end (2021-09-01) is before the start (2022-09-30).' });
    expect(validateEdition({ from: '2021-02-30' }).from).toContain('not a date');
    expect(validateEdition({ from: '01/09/2021' }).from).toContain('YYYY-MM-DD');
  });
});
