/**
 * Patch semantics (seed 001): the properties supplied are deep-merged into the product's, nothing
 * else changes; files are appended to, or replace, the product's set.
 */
import { putJsonKey, type FeatureFile, type FileUpdateMode } from '../../../src-shared/domain/product';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Own property only: a key such as `__proto__` must never reach Object.prototype. */
function own(o: Json, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

export interface MergeResult {
  properties: Json;
  /** dotted paths of the values written (at most `limit`) */
  changed: string[];
}

/**
 * Deep-merges `patch` into `target` without changing either. Objects merge key by key; any other
 * value supplied (a string, a number, a list, null) replaces what was there. Only values that
 * differ count as changed.
 */
export function mergeProperties(target: Json, patch: Json, limit = 50): MergeResult {
  const changed: string[] = [];
  const merge = (base: Json, p: Json, prefix: string, track = true): Json => {
    const out: Json = {};
    for (const k of Object.keys(base)) putJsonKey(out, k, own(base, k));
    for (const k of Object.keys(p)) {
      const v = own(p, k);
      const current = own(base, k);
      const path = prefix ? `${prefix}.${k}` : k;
      if (isObject(v) && isObject(current)) putJsonKey(out, k, merge(current, v, path, track));
      else {
        if (track && (!Object.prototype.hasOwnProperty.call(base, k) || JSON.stringify(current) !== JSON.stringify(v))) {
          if (changed.length < limit) changed.push(path);
        }
        putJsonKey(out, k, isObject(v) ? merge({}, v, path, false) : v);
      }
    }
    return out;
  };
  return { properties: merge(target, patch, ''), changed };
}

const sameFile = (a: FeatureFile, b: FeatureFile) =>
  a.attributes.checksum.toLowerCase() === b.attributes.checksum.toLowerCase() && a.attributes.algorithm.toUpperCase() === b.attributes.algorithm.toUpperCase();

/**
 * The files after a patch. No files supplied: unchanged. REPLACE: exactly the supplied set. APPEND:
 * the supplied files are added; one with the same checksum as a file already there is the same
 * file: its new locations are added to that file's and its attributes take the new values.
 */
export function mergeFiles(existing: readonly FeatureFile[], incoming: readonly FeatureFile[] | null | undefined, mode: FileUpdateMode): FeatureFile[] {
  if (!incoming) return [...existing];
  if (mode === 'REPLACE') return incoming.map((f) => ({ ...f }));
  const out = existing.map((f) => ({ ...f, locations: [...f.locations] }));
  for (const f of incoming) {
    const same = out.find((e) => sameFile(e, f));
    if (!same) {
      out.push({ ...f, locations: [...f.locations] });
      continue;
    }
    for (const loc of f.locations) if (!same.locations.some((l) => l.url === loc.url)) same.locations.push(loc);
    same.attributes = { ...same.attributes, ...f.attributes };
  }
  return out;
}
