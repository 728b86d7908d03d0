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

/** A closed axis-aligned square, counter-clockwise, with its lower-left corner at (x, y). */
const square = (x: number, y: number, s = 1): Position[] => [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]];

describe('the polygons of a MultiPolygon must not overlap', () => {
  const rules = (extent: unknown) => validateExtent(extent).problems.map((p) => `${p.rule} ${p.path}`);

  it('refuses two polygons whose outlines cross, naming both and where', () => {
    const r = validateExtent({ type: 'MultiPolygon', coordinates: [[square(0, 0, 2)], [square(5, 5)], [square(1, 1, 2)]] });
    expect(r.ok).toBe(false);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ rule: 'polygons-overlap', path: 'coordinates[2]' });
    expect(r.problems[0].message).toMatch(/^Polygons 1 and 3 overlap at /);
    expect(r.problems[0].message).toMatch(/merge them into one polygon or move them apart/);
    const [lon, lat] = r.problems[0].at!;
    expect(lon >= 1 && lon <= 2 && lat >= 1 && lat <= 2).toBe(true);
  });

  it('refuses a polygon inside another, a duplicate, and an overlap whose outlines only meet at vertices', () => {
    expect(rules({ type: 'MultiPolygon', coordinates: [[square(0, 0, 4)], [square(1, 1)]] })).toEqual(['polygons-overlap coordinates[1]']);
    expect(rules({ type: 'MultiPolygon', coordinates: [[square(1, 1)], [square(0, 0, 4)]] })).toEqual(['polygons-overlap coordinates[1]']);
    expect(rules({ type: 'MultiPolygon', coordinates: [[square(0, 0)], [square(0, 0)]] }).map((x) => x.split(' ')[0])).toEqual(['polygons-share-edge']);
    // the triangle's outline goes through the square's corners (0,0) and (2,2) and crosses no edge of it
    const diagonal = [[0, 0], [2, 2], [3, -1], [0, 0]];
    expect(rules({ type: 'MultiPolygon', coordinates: [[square(0, 0, 2)], [diagonal]] })).toEqual(['polygons-overlap coordinates[1]']);
    // an edge through two corners of the square, crossing none of its edges
    const through = [[-1, -1], [3, 3], [3, -1], [-1, -1]];
    expect(rules({ type: 'MultiPolygon', coordinates: [[square(0, 0, 2)], [through]] })).toEqual(['polygons-overlap coordinates[1]']);
  });

  it('accepts polygons that touch at points only: a shared corner, a corner on an edge, an island in a hole', () => {
    expect(validateExtent({ type: 'MultiPolygon', coordinates: [[square(0, 0)], [square(1, 1)]] }).problems).toEqual([]);
    expect(validateExtent({ type: 'MultiPolygon', coordinates: [[square(0, 0, 2)], [[[1, 2], [2, 3], [0, 3], [1, 2]]]] }).problems).toEqual([]);
    const ringWithHole = [square(0, 0, 6), square(1, 1, 4).reverse()];
    expect(validateExtent({ type: 'MultiPolygon', coordinates: [ringWithHole, [square(2, 2)]] }).problems).toEqual([]);
    // the island touches the hole's border at its corner, (1, 1), and nowhere else
    expect(validateExtent({ type: 'MultiPolygon', coordinates: [ringWithHole, [[[1, 1], [2, 1.5], [1.5, 2], [1, 1]]]] }).problems).toEqual([]);
  });

  it('does not see a crossing at a shared corner by a rounding error', () => {
    // computed, these two edges ending at b meet at 0.9999999999999999 of each: inside both, a crossing
    const [a, b, c]: Position[] = [[-1.981635, 49.614447], [3.092042, 48.220701], [6.340424, 41.062511]];
    const away = (p: Position, q: Position): Position => [p[0] + (p[0] - q[0]) / 10, p[1] + (p[1] - q[1]) / 10];
    const r = validateExtent({ type: 'MultiPolygon', coordinates: [[[a, b, away(a, c), a]], [[c, b, away(c, a), c]]] });
    expect(r.problems).toEqual([]);
  });

  it('refuses polygons that touch along an edge (OGC: boundaries may meet at points only), saying from where to where', () => {
    const r = validateExtent({ type: 'MultiPolygon', coordinates: [[square(0, 0)], [square(1, 0)]] });
    expect(r.problems.map((p) => `${p.rule} ${p.path}`)).toEqual(['polygons-share-edge coordinates[1]']);
    expect(r.problems[0].message).toMatch(/^Polygons 1 and 2 share a border from .* to .*: polygons of a MultiPolygon may touch at points only/);
    // part of an edge, and an island that fills its hole exactly
    expect(rules({ type: 'MultiPolygon', coordinates: [[square(0, 0, 2)], [square(2, 1)]] })).toEqual(['polygons-share-edge coordinates[1]']);
    expect(rules({ type: 'MultiPolygon', coordinates: [[square(0, 0, 6), square(1, 1, 4).reverse()], [square(1, 1, 4)]] })).toEqual([
      'polygons-share-edge coordinates[1]',
    ]);
  });

  it('checks the polygons gathered from the features of a collection against each other', () => {
    const fc = {
      type: 'FeatureCollection',
      features: [square(0, 0, 2), square(1, 1, 2)].map((ring) => ({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [ring] } })),
    };
    expect(rules(fc)).toEqual(['polygons-overlap coordinates[1]']);
  });

  it('stays bounded at the position cap: 1000 polygons whose boxes all overlap are checked, 21 overlaps at most are reported', () => {
    // 1000 thin parallel strips across one square: every bounding box overlaps every other, no strip touches another
    const strips = Array.from({ length: 1000 }, (_, k) => {
      const x = 2 + k / 1000;
      return [[[x, 46], [x + 0.0005, 46], [x + 1.0005, 47], [x + 1, 47], [x, 46]]];
    });
    const ok = validateExtent({ type: 'MultiPolygon', coordinates: strips });
    expect(ok.positions).toBe(MAX_EXTENT_POSITIONS);
    expect(ok.problems).toEqual([]);
    // 1000 squares, each overlapping all the others: the search stops at the 21st pair
    const stacked = Array.from({ length: 1000 }, (_, k) => [square(2 + k / 10_000, 46 + k / 10_000)]);
    const r = validateExtent({ type: 'MultiPolygon', coordinates: stacked });
    expect(r.positions).toBe(MAX_EXTENT_POSITIONS);
    expect(r.problems).toHaveLength(21);
    expect(r.problems.slice(0, 20).every((p) => p.rule === 'polygons-overlap')).toBe(true);
    expect(r.problems[20].message).toMatch(/More than 20 pairs of polygons overlap/);
    // past the cap, only the count is reported
    expect(rules({ type: 'MultiPolygon', coordinates: [...stacked, [square(0, 0)]] })).toEqual(['too-many-positions coordinates']);
  });
});

describe('a collection without polygons says which features are not polygons', () => {
  const feature = (geometry: unknown) => ({ type: 'Feature', properties: {}, geometry });

  it('names each feature, by number, with its type, instead of a generic error', () => {
    const r = validateExtent({
      type: 'FeatureCollection',
      features: [feature({ type: 'Point', coordinates: [2, 46] }), feature({ type: 'LineString', coordinates: [[2, 46], [3, 47]] })],
    });
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => `${p.rule} ${p.path}`)).toEqual(['unsupported-type features[0].geometry.type', 'unsupported-type features[1].geometry.type']);
    expect(r.problems[0].message).toMatch(/^Feature 1 is a Point/);
    expect(r.problems[1].message).toMatch(/^Feature 2 is a LineString/);
    expect(r.problems[1].message).toMatch(/Polygon or MultiPolygon/);
  });

  it('names the odd one out in a collection of polygons, and features with no geometry', () => {
    const r = validateExtent({
      type: 'FeatureCollection',
      features: [feature({ type: 'Polygon', coordinates: [square(0, 0)] }), feature({ type: 'MultiPoint', coordinates: [[2, 46]] }), feature(null)],
    });
    expect(r.problems.map((p) => `${p.rule} ${p.path}`)).toEqual(['unsupported-type features[1].geometry.type', 'not-geojson features[2].geometry']);
    expect(r.problems[0].message).toMatch(/^Feature 2 is a MultiPoint/);
    expect(r.problems[1].message).toMatch(/^Feature 3 has no geometry/);
    expect(r.extent?.coordinates).toHaveLength(1);
  });

  it('lists 20 features at most, then counts the rest by type', () => {
    const points = Array.from({ length: 25 }, (_, i) => feature(i < 22 ? { type: 'Point', coordinates: [2, 46] } : { type: 'LineString', coordinates: [[2, 46], [3, 47]] }));
    const r = validateExtent({ type: 'FeatureCollection', features: points });
    expect(r.problems).toHaveLength(21);
    expect(r.problems[19].message).toMatch(/^Feature 20 is a Point/);
    expect(r.problems[20].message).toBe('5 more features are not polygons either (2 Point, 3 LineString).');
  });
});

describe('edition dates', () => {
  it('wants ISO dates with from before to', () => {
    expect(validateEdition({ from: '2022-09-30', to: '2021-09-01' })).toEqual({ to: 'The end (2021-09-01) is before the start (2022-09-30).' });
    expect(validateEdition({ from: '2021-02-30' }).from).toContain('not a date');
    expect(validateEdition({ from: '01/09/2021' }).from).toContain('YYYY-MM-DD');
  });
});
