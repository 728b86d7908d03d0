/**
 * Stored-data extents (IGN Entrepot, seed 002): a GeoJSON MultiPolygon in WGS84 of at most 5000
 * positions, stated by the archivist because an archive's format is opaque. Validation and
 * simplification live here, in the contract layer, so that the service refuses what the editor
 * shows as wrong, with the same words. Geometry comes from turf, but for two things: finding where
 * rings cross (`crossings`) and where polygons overlap (`overlaps`). turf's kinks lists every
 * crossing before any can be reported, and a 5000-position star has 12 million of them (16 s and
 * 3.4 GB in one request); the checks here stop at the first 21. turf's boolean overlap and
 * intersect predicates answer for one pair and build geometry for it: over a thousand polygons,
 * half a million pairs.
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
    | 'polygons-overlap'
    | 'polygons-share-edge'
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

/** Where a geometry is in the input: `path` for the problem, `label` for the message ('' at the top). */
interface Where {
  path: string;
  label: string;
}

const member = (w: Where, key: 'features' | 'geometries', i: number): Where => {
  const noun = key === 'features' ? 'feature' : 'geometry';
  return {
    path: `${w.path ? `${w.path}.` : ''}${key}[${i}]`,
    label: w.label ? `${w.label}, ${noun} ${i + 1}` : `${noun === 'feature' ? 'Feature' : 'Geometry'} ${i + 1}`,
  };
};

/** A collection of thousands of points (a KML of placemarks) is told in 21 lines, not thousands. */
const MAX_LISTED_MEMBERS = 20;

/** What polygonsOf gathers besides polygons: the problems, and the types of the members not listed. */
interface Gathered {
  problems: ExtentProblem[];
  unsupported: number;
  unlisted: Map<string, number>;
}

/** Accepts Polygon, MultiPolygon, a Feature of one, or a FeatureCollection of them; returns polygons' rings. */
function polygonsOf(input: unknown, g: Gathered, depth = 0, where: Where = { path: '', label: '' }): unknown[] | undefined {
  const at = (key: string) => (where.path ? `${where.path}.${key}` : key);
  if (depth > MAX_NESTING) {
    g.problems.push({ path: where.path, rule: 'not-geojson', message: `The extent nests features or collections more than ${MAX_NESTING} deep.` });
    return undefined;
  }
  if (!isObject(input)) {
    g.problems.push({ path: where.path, rule: 'not-geojson', message: `${where.label || 'The extent'} is not a GeoJSON object.` });
    return undefined;
  }
  if (typeof input.type !== 'string') {
    g.problems.push({ path: at('type'), rule: 'not-geojson', message: `${where.label || 'The extent'} has no GeoJSON type.` });
    return undefined;
  }
  switch (input.type) {
    case 'Polygon':
      return [input.coordinates];
    case 'MultiPolygon':
      if (Array.isArray(input.coordinates)) return input.coordinates;
      g.problems.push({ path: at('coordinates'), rule: 'not-geojson', message: `${where.label ? `${where.label}, a MultiPolygon,` : 'The MultiPolygon'} has no coordinates array.` });
      return undefined;
    case 'Feature':
      // a feature keeps its name for its geometry: "Feature 3 is a Point"
      if (input.geometry === null || input.geometry === undefined) {
        g.problems.push({ path: at('geometry'), rule: 'not-geojson', message: `${where.label || 'The feature'} has no geometry: an extent is made of polygons (Polygon or MultiPolygon).` });
        return undefined;
      }
      return polygonsOf(input.geometry, g, depth + 1, { path: at('geometry'), label: where.label });
    case 'FeatureCollection':
    case 'GeometryCollection': {
      const key = input.type === 'FeatureCollection' ? 'features' : 'geometries';
      const members = input[key];
      if (!Array.isArray(members)) {
        g.problems.push({ path: at(key), rule: 'not-geojson', message: `${where.label ? `${where.label}, a ${input.type},` : `The ${input.type}`} has no ${key} array.` });
        return undefined;
      }
      const all: unknown[] = [];
      members.forEach((m: unknown, i: number) => {
        const p = polygonsOf(m, g, depth + 1, member(where, key, i));
        if (p) all.push(...p);
      });
      return all;
    }
    default:
      if (!where.label) {
        g.problems.push({ path: at('type'), rule: 'unsupported-type', message: `A ${input.type} cannot be an extent: draw or import polygons (Polygon or MultiPolygon).` });
      } else if (++g.unsupported <= MAX_LISTED_MEMBERS) {
        g.problems.push({
          path: at('type'),
          rule: 'unsupported-type',
          message: `${where.label} is a ${input.type}, which cannot be part of an extent: only polygons (Polygon or MultiPolygon) can.`,
        });
      } else g.unlisted.set(input.type, (g.unlisted.get(input.type) ?? 0) + 1);
      return undefined;
  }
}

export function countPositions(mp: MultiPolygon): number {
  let n = 0;
  for (const poly of mp.coordinates) for (const ring of poly) n += ring.length;
  return n;
}

const fmt = (p: Position) => `${p[1].toFixed(5)}° N, ${p[0].toFixed(5)}° E`;

const same = (a: Position, b: Position) => a[0] === b[0] && a[1] === b[1];

interface Edge {
  a: Position;
  b: Position;
  ring: number;
  /** its place in its ring, zero-length edges left out */
  n: number;
  last: boolean;
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

interface Box {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/** Boxes that only touch are not apart: polygons that touch may share a border. */
const apart = (e: Box, f: Box) => f.x0 > e.x1 || f.x1 < e.x0 || f.y0 > e.y1 || f.y1 < e.y0;

/** The edges of a polygon's rings, each with its bounding box; a repeated position (a zero-length edge, legal GeoJSON) makes none. */
function edgesOf(rings: Position[][]): Edge[] {
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
  return edges;
}

/**
 * Up to `max` points where the rings of one polygon cross or touch themselves or each other. A
 * repeated position (a zero-length edge, legal GeoJSON) is no crossing; two edges that follow each
 * other in a ring meet at their shared position, which is not one either. Every pair of edges is
 * tried, with a bounding-box test first: at most 5000 positions, about 12 million pairs, well under
 * a second, in constant memory.
 */
export function crossings(rings: Position[][], max: number): Position[] {
  const edges = edgesOf(rings);
  const found: Position[] = [];
  for (let i = 0; i < edges.length && found.length < max; i++) {
    const e = edges[i];
    for (let j = i + 1; j < edges.length && found.length < max; j++) {
      const f = edges[j];
      if (apart(e, f)) continue;
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
      const c = contact(e.a, e.b, f.a, f.b);
      if (c) found.push(c.at);
    }
  }
  return found;
}

/**
 * How segments ab and cd meet: at one point, `t` of the way along ab and `u` along cd (0 and 1 at
 * their ends), or along a stretch from `at` to `to` when they are collinear; undefined if apart.
 * Shared ends are compared, not computed: two polygons with a common corner do not cross there by
 * a rounding error.
 */
function contact(a: Position, b: Position, c: Position, d: Position): { at: Position; t: number; u: number } | { at: Position; to: Position } | undefined {
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
    const at: Position = [a[0] + lo * rx, a[1] + lo * ry];
    if (hi > lo) return { at, to: [a[0] + hi * rx, a[1] + hi * ry] };
    // end to end: the point is an end of both
    const end = lo === 0 ? a : b;
    return { at: end, t: lo, u: same(end, c) ? 0 : 1 };
  }
  if (same(a, c)) return { at: a, t: 0, u: 0 };
  if (same(a, d)) return { at: a, t: 0, u: 1 };
  if (same(b, c)) return { at: b, t: 1, u: 0 };
  if (same(b, d)) return { at: b, t: 1, u: 1 };
  const t = (qx * sy - qy * sx) / den;
  const u = (qx * ry - qy * rx) / den;
  if (t < 0 || t > 1 || u < 0 || u > 1) return undefined;
  return { at: [a[0] + t * rx, a[1] + t * ry], t, u };
}

interface Shape {
  edges: Edge[];
  box: Box;
  /** with its bbox, which turf tests first */
  polygon: Polygon;
}

/** Two polygons of a MultiPolygon that break the rule: interiors overlapping at `at`, or a border shared from `at` to `to`. */
export interface Overlap {
  first: number;
  second: number;
  at: Position;
  to?: Position;
}

/**
 * Up to `max` pairs of polygons, each valid on its own, whose interiors overlap or whose borders
 * share a stretch (OGC Simple Features, MultiPolygon: interiors disjoint, borders meeting at finitely
 * many points; touching at a corner is allowed, along an edge is not). Pairs whose boxes are apart
 * are skipped; any other pair costs at most its edges times its edges, so the whole search, like
 * `crossings`, tries each pair of edges of the extent at most about twice: bounded by the position
 * cap, in memory linear in it.
 */
export function overlaps(polygons: Position[][][], max: number): Overlap[] {
  const shapes: Shape[] = polygons.map((rings) => {
    const edges = edgesOf(rings);
    const box = { x0: Infinity, x1: -Infinity, y0: Infinity, y1: -Infinity };
    for (const e of edges) {
      box.x0 = Math.min(box.x0, e.x0);
      box.x1 = Math.max(box.x1, e.x1);
      box.y0 = Math.min(box.y0, e.y0);
      box.y1 = Math.max(box.y1, e.y1);
    }
    return { edges, box, polygon: { type: 'Polygon', coordinates: rings, bbox: [box.x0, box.y0, box.x1, box.y1] } };
  });
  const found: Overlap[] = [];
  for (let i = 0; i < shapes.length && found.length < max; i++) {
    for (let j = i + 1; j < shapes.length && found.length < max; j++) {
      if (apart(shapes[i].box, shapes[j].box)) continue;
      const o = overlapOf(shapes[i], shapes[j]);
      if (o) found.push({ first: i, second: j, ...o });
    }
  }
  return found;
}

const inside = (p: Position, s: Shape) => booleanPointInPolygon(p, s.polygon, { ignoreBoundary: true });

/**
 * Where two polygons overlap, if they do. Borders that cross, or run along each other, settle it.
 * Otherwise they meet at points only, or not at all, and cut each other's edges into pieces that lie
 * wholly inside or wholly outside the other polygon: the polygons overlap if and only if the middle
 * of some piece is inside the other (if they do not meet, one corner each way tells).
 */
function overlapOf(p: Shape, q: Shape): { at: Position; to?: Position } | undefined {
  const cutsP = new Map<number, number[]>();
  const cutsQ = new Map<number, number[]>();
  const cut = (cuts: Map<number, number[]>, i: number, t: number) => {
    const list = cuts.get(i);
    if (list) list.push(t);
    else cuts.set(i, [t]);
  };
  for (let i = 0; i < p.edges.length; i++) {
    const e = p.edges[i];
    if (apart(e, q.box)) continue;
    for (let j = 0; j < q.edges.length; j++) {
      const f = q.edges[j];
      if (apart(e, f)) continue;
      const c = contact(e.a, e.b, f.a, f.b);
      if (!c) continue;
      if ('to' in c) return c;
      if (c.t > 0 && c.t < 1 && c.u > 0 && c.u < 1) return { at: c.at };
      cut(cutsP, i, c.t);
      cut(cutsQ, j, c.u);
    }
  }
  if (cutsP.size === 0) {
    const corner = (s: Shape) => s.polygon.coordinates[0][0];
    if (inside(corner(q), p)) return { at: corner(q) };
    if (inside(corner(p), q)) return { at: corner(p) };
    return undefined;
  }
  const enters = (s: Shape, cuts: Map<number, number[]>, other: Shape): Position | undefined => {
    for (let i = 0; i < s.edges.length; i++) {
      const e = s.edges[i];
      if (apart(e, other.box)) continue;
      const ts = [0, ...(cuts.get(i) ?? []), 1].sort((x, y) => x - y);
      for (let k = 0; k + 1 < ts.length; k++) {
        if (ts[k + 1] === ts[k]) continue;
        const m = (ts[k] + ts[k + 1]) / 2;
        const at: Position = [e.a[0] + m * (e.b[0] - e.a[0]), e.a[1] + m * (e.b[1] - e.a[1])];
        if (inside(at, other)) return at;
      }
    }
    return undefined;
  };
  const at = enters(q, cutsQ, p) ?? enters(p, cutsP, q);
  return at ? { at } : undefined;
}

/**
 * Checks an extent and promotes a Polygon to a MultiPolygon. Every problem is reported, each with
 * where it is: members of a collection that are not polygons (by number and type), unclosed or
 * short rings, positions out of range, self-intersections (with the crossing point), antimeridian
 * crossings (refused: split the polygon at 180°), polygons that overlap or share a border (checked
 * among those valid on their own; touching at a corner is allowed), over 5000 positions.
 */
export function validateExtent(input: unknown): ExtentCheck {
  const problems: ExtentProblem[] = [];
  const gathered: Gathered = { problems, unsupported: 0, unlisted: new Map() };
  const polygons = polygonsOf(input, gathered);
  if (gathered.unlisted.size) {
    const n = gathered.unsupported - MAX_LISTED_MEMBERS;
    const types = [...gathered.unlisted].map(([type, k]) => `${k} ${type}`).join(', ');
    problems.push({ path: '', rule: 'unsupported-type', message: `${n} more ${n === 1 ? 'feature is not a polygon' : 'features are not polygons'} either (${types}).` });
  }
  if (!polygons) return { ok: false, problems, positions: 0 };
  // a collection of points only: what its members are says more than "no polygon"
  if (polygons.length === 0 && problems.length) return { ok: false, problems, positions: 0 };
  if (polygons.length === 0) {
    return { ok: false, problems: [{ path: 'coordinates', rule: 'empty', message: 'The extent has no polygon.' }], positions: 0 };
  }
  const clean: Position[][][] = [];
  /** the polygons with no problem of their own, which are then checked against each other */
  const sound: { index: number; rings: Position[][] }[] = [];
  let positions = 0;
  polygons.forEach((poly, pi) => {
    const before = problems.length;
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
      if (problems.length === before) sound.push({ index: pi, rings });
    }
  });
  if (positions <= MAX_EXTENT_POSITIONS && sound.length > 1) {
    const found = overlaps(sound.map((s) => s.rings), 21);
    for (const o of found.slice(0, 20)) {
      const [first, second] = [sound[o.first].index, sound[o.second].index];
      const what = `Polygons ${first + 1} and ${second + 1}`;
      problems.push(
        o.to
          ? {
              path: `coordinates[${second}]`,
              rule: 'polygons-share-edge',
              message: `${what} share a border from ${fmt(o.at)} to ${fmt(o.to)}: polygons of a MultiPolygon may touch at points only; merge them into one polygon or move them apart.`,
              at: [o.at[0], o.at[1]],
            }
          : {
              path: `coordinates[${second}]`,
              rule: 'polygons-overlap',
              message: `${what} overlap at ${fmt(o.at)}: the polygons of a MultiPolygon must not overlap; merge them into one polygon or move them apart.`,
              at: [o.at[0], o.at[1]],
            },
      );
    }
    if (found.length > 20) problems.push({ path: 'coordinates', rule: 'polygons-overlap', message: 'More than 20 pairs of polygons overlap or share a border.' });
  }
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
