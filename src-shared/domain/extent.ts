/**
 * Stored-data extents (IGN Entrepot, seed 002): a GeoJSON MultiPolygon in WGS84 of at most 5000
 * positions, stated by the archivist because an archive's format is opaque. Validation and
 * simplification live here, in the contract layer, so that the service refuses what the editor
 * shows as wrong, with the same words. Geometry comes from turf, never hand-written.
 */
import { kinks, multiPolygon, simplify } from '@turf/turf';
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

/** Accepts Polygon, MultiPolygon, a Feature of one, or a FeatureCollection of them; returns polygons' rings. */
function polygonsOf(input: unknown, problems: ExtentProblem[]): unknown[] | undefined {
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
      return polygonsOf(input.geometry, problems);
    case 'FeatureCollection': {
      if (!Array.isArray(input.features)) break;
      const all: unknown[] = [];
      for (const f of input.features) {
        const p = polygonsOf(f, problems);
        if (p) all.push(...p);
      }
      return all;
    }
    case 'GeometryCollection': {
      if (!Array.isArray(input.geometries)) break;
      const all: unknown[] = [];
      for (const g of input.geometries) {
        const p = polygonsOf(g, problems);
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
      const crossings = kinks({ type: 'Polygon', coordinates: rings } as Polygon).features;
      for (const k of crossings.slice(0, 20)) {
        const [lon, lat] = k.geometry.coordinates;
        problems.push({ path: `coordinates[${pi}]`, rule: 'self-intersection', message: `Polygon ${pi + 1} crosses itself at ${fmt([lon, lat])}.`, at: [lon, lat] });
      }
      if (crossings.length > 20) {
        problems.push({ path: `coordinates[${pi}]`, rule: 'self-intersection', message: `Polygon ${pi + 1} crosses itself ${crossings.length - 20} more times.` });
      }
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
