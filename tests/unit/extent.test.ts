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
