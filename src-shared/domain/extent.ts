/**
 * Stored-data extents (IGN Entrepot, seed 002): a GeoJSON MultiPolygon in WGS84 of at most 5000
 * positions, stated by the archivist because an archive's format is opaque. Validation and
 * simplification live here, in the contract layer, so that the service refuses what the editor
 * shows as wrong, with the same words. Geometry comes from turf, but for one thing: finding where
 * rings cross (`crossings`). turf's kinks lists every crossing before any can be reported, and a
 * 5000-position star has 12 million of them (16 s and 3.4 GB in one request); the check here stops
 * at the first 21.
 */
import { area, booleanPointInPolygon, multiPolygon, simplify } from '@turf/turf';
import type { MultiPolygon, Polygon, Position } from 'geojson';

export const MAX_EXTENT_POSITIONS = 5000;

export interface ExtentProblem {
  /** where in the input: `coordinates[1][0][3]` */
  path: string;
  rule:
    | 'not-geojson'
    | 'unsupported-type'
    | 'position-invalid'
    | 'longitude-out-of-range'
    | 'latitude-out-of-range'
    | 'ring-too-short'
    | 'ring-not-closed'
    | 'self-intersection'
    | 'crosses-antimeridian'
    | 'too-many-positions'
    | 'empty';
  message: string;
  /** the position the problem is at, for the map */
  at?: [number, number];
}

export type ExtentCheck =
  | { ok: true; extent: MultiPolygon; positions: number; problems: [] }
  | { ok: false; problems: ExtentProblem[]; positions: number; extent?: MultiPolygon };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Features in collections in features...: deeper than this is not an extent anyone drew. */
const MAX_NESTING = 4;

/** Accepts Polygon, MultiPolygon, a Feature of one, or a FeatureCollection of them; returns polygons' rings. */
function polygonsOf(input: unknown, problems: ExtentProblem[], depth = 0): unknown[] | undefined {
  if (depth > MAX_NESTING) {
    problems.push({ path: '', rule: 'not-geojson', message: `The extent nests features or collections more than ${MAX_NESTING} deep.` });
    return undefined;
  }
  if (!isObject(input)) {
    problems.push({ path: '', rule: 'not-geojson', message: 'The extent is not a GeoJSON object.' });
    return undefined;
  }
  switch (input.type) {
    case 'Polygon':
      return [input.coordinates];
    case 'MultiPolygon':
      if (!Array.isArray(input.coordinates)) break;
      return input.coordinates;
    case 'Feature':
      return polygonsOf(input.geometry, problems, depth + 1);
    case 'FeatureCollection': {
      if (!Array.isArray(input.features)) break;
      const all: unknown[] = [];
      for (const f of input.features) {
        const p = polygonsOf(f, problems, depth + 1);
        if (p) all.push(...p);
      }
      return all;
    }
    case 'GeometryCollection': {
      if (!Array.isArray(input.geometries)) break;
      const all: unknown[] = [];
      for (const g of input.geometries) {
        const p = polygonsOf(g, problems, depth + 1);
        if (p) all.push(...p);
      }
      return all;
    }
    default:
      problems.push({
        path: 'type',
        rule: 'unsupported-type',
        message: `A ${String(input.type)} cannot be an extent: draw or import polygons (Polygon or MultiPolygon).`,
      });
      return undefined;
  }
  problems.push({ path: 'coordinates', rule: 'not-geojson', message: `The ${String(input.type)} has no coordinates array.` });
  return undefined;
}

export function countPositions(mp: MultiPolygon): number {
  let n = 0;
  for (const poly of mp.coordinates) for (const ring of poly) n += ring.length;
  return n;
}

const fmt = (p: Position) => `${p[1].toFixed(5)}° N, ${p[0].toFixed(5)}° E`;

const same = (a: Position, b: Position) => a[0] === b[0] && a[1] === b[1];

/**
 * Up to `max` points where the rings of one polygon cross or touch themselves or each other. A
 * repeated position (a zero-length edge, legal GeoJSON) is no crossing; two edges that follow each
 * other in a ring meet at their shared position, which is not one either. Every pair of edges is
 * tried, with a bounding-box test first: at most 5000 positions, about 12 million pairs, well under
 * a second, in constant memory.
 */
export function crossings(rings: Position[][], max: number): Position[] {
  type Edge = { a: Position; b: Position; ring: number; n: number; last: boolean; x0: number; x1: number; y0: number; y1: number };
  const edges: Edge[] = [];
  rings.forEach((ring, r) => {
    const mine: Edge[] = [];
    for (let i = 0; i + 1 < ring.length; i++) {
      const a = ring[i];
      const b = ring[i + 1];
      if (same(a, b)) continue;
      mine.push({ a, b, ring: r, n: mine.length, last: false, x0: Math.min(a[0], b[0]), x1: Math.max(a[0], b[0]), y0: Math.min(a[1], b[1]), y1: Math.max(a[1], b[1]) });
    }
    if (mine.length) mine[mine.length - 1].last = true;
    edges.push(...mine);
  });
  const found: Position[] = [];
  for (let i = 0; i < edges.length && found.length < max; i++) {
    const e = edges[i];
    for (let j = i + 1; j < edges.length && found.length < max; j++) {
      const f = edges[j];
      if (f.x0 > e.x1 || f.x1 < e.x0 || f.y0 > e.y1 || f.y1 < e.y0) continue;
      if (e.ring === f.ring && (f.n === e.n + 1 || (e.n === 0 && f.last))) {
        // neighbours meet at the position they share (computed, it may differ in the last bit):
        // only a spike, the ring going back along itself, is a crossing
        const shared = f.n === e.n + 1 ? e.b : e.a;
        const u = [e.a[0] - e.b[0], e.a[1] - e.b[1]];
        const v = [f.b[0] - f.a[0], f.b[1] - f.a[1]];
        const [p, q] = f.n === e.n + 1 ? [u, v] : [[-u[0], -u[1]], [f.a[0] - f.b[0], f.a[1] - f.b[1]]];
        if (p[0] * q[1] - p[1] * q[0] === 0 && p[0] * q[0] + p[1] * q[1] > 0) found.push(shared);
        continue;
      }
      const p = meet(e.a, e.b, f.a, f.b);
      if (p) found.push(p);
    }
  }
  return found;
}

/** Where segments ab and cd meet (the first shared point when they overlap), or undefined. */
function meet(a: Position, b: Position, c: Position, d: Position): Position | undefined {
  const rx = b[0] - a[0];
  const ry = b[1] - a[1];
  const sx = d[0] - c[0];
  const sy = d[1] - c[1];
  const den = rx * sy - ry * sx;
  const qx = c[0] - a[0];
  const qy = c[1] - a[1];
  if (den === 0) {
    if (qx * ry - qy * rx !== 0) return undefined; // parallel, apart
    // collinear: overlapping if the projections of c or d fall on ab, or ab inside cd
    const len = rx * rx + ry * ry;
    const t0 = (qx * rx + qy * ry) / len;
    const t1 = ((d[0] - a[0]) * rx + (d[1] - a[1]) * ry) / len;
    const lo = Math.max(0, Math.min(t0, t1));
    const hi = Math.min(1, Math.max(t0, t1));
    if (lo > hi) return undefined;
    return [a[0] + lo * rx, a[1] + lo * ry];
  }
  const t = (qx * sy - qy * sx) / den;
  const u = (qx * ry - qy * rx) / den;
  if (t < 0 || t > 1 || u < 0 || u > 1) return undefined;
  return [a[0] + t * rx, a[1] + t * ry];
}

/**
 * Checks an extent and promotes a Polygon to a MultiPolygon. Every problem is reported, each with
 * where it is: unclosed or short rings, positions out of range, self-intersections (with the
 * crossing point), antimeridian crossings (refused: split the polygon at 180°), over 5000 positions.
 */
export function validateExtent(input: unknown): ExtentCheck {
  const problems: ExtentProblem[] = [];
  const polygons = polygonsOf(input, problems);
  if (!polygons) return { ok: false, problems, positions: 0 };
  if (polygons.length === 0) {
    return { ok: false, problems: [{ path: 'coordinates', rule: 'empty', message: 'The extent has no polygon.' }], positions: 0 };
  }
  const clean: Position[][][] = [];
  let positions = 0;
  polygons.forEach((poly, pi) => {
    if (!Array.isArray(poly) || poly.length === 0) {
      problems.push({ path: `coordinates[${pi}]`, rule: 'not-geojson', message: `Polygon ${pi + 1} has no ring.` });
      return;
    }
    const rings: Position[][] = [];
    poly.forEach((ring: unknown, ri: number) => {
      const where = `coordinates[${pi}][${ri}]`;
      const label = `Polygon ${pi + 1}, ${ri === 0 ? 'outer ring' : `hole ${ri}`}`;
      if (!Array.isArray(ring)) {
        problems.push({ path: where, rule: 'not-geojson', message: `${label} is not a list of positions.` });
        return;
      }
      positions += ring.length;
      const ok: Position[] = [];
      let inRange = true;
      ring.forEach((p: unknown, i: number) => {
        if (!Array.isArray(p) || p.length < 2 || !p.slice(0, 2).every((x) => typeof x === 'number' && Number.isFinite(x))) {
          problems.push({ path: `${where}[${i}]`, rule: 'position-invalid', message: `${label}, position ${i + 1} is not [longitude, latitude].` });
          return;
        }
        const [lon, lat] = p as number[];
        if (lon < -180 || lon > 180 || lat < -90 || lat > 90) inRange = false;
        if (lon < -180 || lon > 180) problems.push({ path: `${where}[${i}]`, rule: 'longitude-out-of-range', message: `${label}, position ${i + 1}: longitude ${lon} is outside −180…180.`, at: [lon, lat] });
        if (lat < -90 || lat > 90) problems.push({ path: `${where}[${i}]`, rule: 'latitude-out-of-range', message: `${label}, position ${i + 1}: latitude ${lat} is outside −90…90.`, at: [lon, lat] });
        ok.push([lon, lat]);
      });
      if (ok.length !== ring.length || !inRange) return;
      if (ok.length < 4) {
        problems.push({ path: where, rule: 'ring-too-short', message: `${label} has ${ok.length} positions; a ring needs at least 4 (a triangle, closed).` });
        return;
      }
      const first = ok[0];
      const last = ok[ok.length - 1];
      if (first[0] !== last[0] || first[1] !== last[1]) {
        problems.push({ path: where, rule: 'ring-not-closed', message: `${label} is not closed: it starts at ${fmt(first)} and ends at ${fmt(last)}.`, at: [last[0], last[1]] });
        return;
      }
      for (let i = 1; i < ok.length; i++) {
        if (Math.abs(ok[i][0] - ok[i - 1][0]) > 180) {
          problems.push({
            path: `${where}[${i}]`,
            rule: 'crosses-antimeridian',
            message: `${label} jumps across the 180° meridian between positions ${i} and ${i + 1}; split it into two polygons, one on each side of 180°.`,
            at: [ok[i][0], ok[i][1]],
          });
          return;
        }
      }
      rings.push(ok);
    });
    if (rings.length === poly.length) {
      clean.push(rings);
      // geometry only on what may be stored: past the limit the count is the problem (simplify first)
      if (positions > MAX_EXTENT_POSITIONS) return;
      rings.forEach((ring, ri) => {
        if (area({ type: 'Polygon', coordinates: [ring] } as Polygon) === 0) {
          problems.push({ path: `coordinates[${pi}][${ri}]`, rule: 'ring-too-short', message: `Polygon ${pi + 1}, ${ri === 0 ? 'outer ring' : `hole ${ri}`} encloses no area (its positions are on one line).` });
        } else if (ri > 0 && !booleanPointInPolygon(ring[0], { type: 'Polygon', coordinates: [rings[0]] } as Polygon, { ignoreBoundary: true })) {
          problems.push({ path: `coordinates[${pi}][${ri}]`, rule: 'self-intersection', message: `Polygon ${pi + 1}, hole ${ri} is not inside the outer ring (it starts at ${fmt(ring[0])}).`, at: [ring[0][0], ring[0][1]] });
        }
      });
      const found = crossings(rings, 21);
      for (const at of found.slice(0, 20)) {
        problems.push({ path: `coordinates[${pi}]`, rule: 'self-intersection', message: `Polygon ${pi + 1} crosses itself at ${fmt(at)}.`, at: [at[0], at[1]] });
      }
      if (found.length > 20) problems.push({ path: `coordinates[${pi}]`, rule: 'self-intersection', message: `Polygon ${pi + 1} crosses itself more than 20 times.` });
    }
  });
  if (positions > MAX_EXTENT_POSITIONS) {
    problems.push({
      path: 'coordinates',
      rule: 'too-many-positions',
      message: `The extent has ${positions} positions; at most ${MAX_EXTENT_POSITIONS} are allowed. Simplify it.`,
    });
  }
  const extent: MultiPolygon = { type: 'MultiPolygon', coordinates: clean };
  if (problems.length) return { ok: false, problems, positions, ...(clean.length ? { extent } : {}) };
  return { ok: true, extent, positions, problems: [] };
}

/** Simplifies with a tolerance in degrees (Douglas–Peucker, high quality); rings that collapse are dropped. */
export function simplifyExtent(mp: MultiPolygon, tolerance: number): MultiPolygon {
  const out: Position[][][] = [];
  for (const poly of mp.coordinates) {
    try {
      const s = simplify({ type: 'Polygon', coordinates: poly } as Polygon, { tolerance, highQuality: true, mutate: false }) as Polygon;
      const rings = s.coordinates.filter((r) => r.length >= 4);
      if (rings.length && rings[0] === s.coordinates[0]) out.push(rings);
    } catch {
      // the polygon collapsed under this tolerance: it is smaller than the tolerance, drop it
    }
  }
  return multiPolygon(out).geometry;
}

/** The smallest tolerance (to 1e-7°) that brings the extent under `max` positions. */
export function simplifyToFit(mp: MultiPolygon, max = MAX_EXTENT_POSITIONS): { extent: MultiPolygon; tolerance: number; positions: number } {
  if (countPositions(mp) <= max) return { extent: mp, tolerance: 0, positions: countPositions(mp) };
  let lo = 0;
  let hi = 1e-4;
  while (countPositions(simplifyExtent(mp, hi)) > max && hi < 10) hi *= 2;
  for (let i = 0; i < 40 && hi - lo > 1e-7; i++) {
    const mid = (lo + hi) / 2;
    if (countPositions(simplifyExtent(mp, mid)) > max) lo = mid;
    else hi = mid;
  }
  const extent = simplifyExtent(mp, hi);
  return { extent, tolerance: hi, positions: countPositions(extent) };
}

export interface Edition {
  from?: string;
  to?: string;
}

/** Edition dates: ISO calendar dates, from ≤ to. Returns problems keyed by field. */
export function validateEdition(e: Edition): Partial<Record<'from' | 'to', string>> {
  const out: Partial<Record<'from' | 'to', string>> = {};
  const valid = (d: string) => /^\d{4}-\d{2}-\d{2}$/.test(d) && !Number.isNaN(Date.parse(`${d}T00:00:00Z`)) && new Date(`${d}T00:00:00Z`).toISOString().startsWith(d);
  if (e.from !== undefined && !valid(e.from)) out.from = `'${e.from}' is not a date (YYYY-MM-DD).`;
  if (e.to !== undefined && !valid(e.to)) out.to = `'${e.to}' is not a date (YYYY-MM-DD).`;
  if (!out.from && !out.to && e.from && e.to && e.from > e.to) out.to = `The end (${e.to}) is before the start (${e.from}).`;
  return out;
}
