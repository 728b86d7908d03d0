/**
 * The pages behind a VirtualList (timelines, message lists): loaded once, dropped when far from
 * the view, and never left stale by a load that was in flight when the data changed (a timeline
 * that missed its last event while the execution it shows had finished).
 */
import { describe, expect, it } from 'vitest';
import { PageCache } from '../../src-renderer/components/page-cache';

/** A load whose answer the test gives, when it wants. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('PageCache', () => {
  it('loads each needed page once and tells the view', async () => {
    const seen: number[][] = [];
    const cache = new PageCache<string>((pages) => seen.push([...pages.keys()]));
    const loads: number[] = [];
    const load = async (p: number) => {
      loads.push(p);
      return [`row of page ${p}`];
    };
    await cache.ensure(new Set([0, 1]), load);
    await cache.ensure(new Set([0, 1]), load);
    expect(loads).toEqual([0, 1]);
    expect(cache.get(1)).toEqual(['row of page 1']);
    expect(seen.at(-1)).toEqual([0, 1]);
  });

  it('does not start a second load of a page already loading', async () => {
    const cache = new PageCache<string>(() => undefined);
    const d = deferred<string[]>();
    let loads = 0;
    const load = () => {
      loads++;
      return d.promise;
    };
    const first = cache.ensure(new Set([0]), load);
    const second = cache.ensure(new Set([0]), load);
    d.resolve(['a']);
    await Promise.all([first, second]);
    expect(loads).toBe(1);
    expect(cache.get(0)).toEqual(['a']);
  });

  it('keeps the rows read after a change, not those of a load started before it', async () => {
    const cache = new PageCache<string>(() => undefined);
    const before = deferred<string[]>();
    const after = deferred<string[]>();
    const stale = cache.ensure(new Set([0]), () => before.promise);
    cache.invalidate(); // a new event: the timeline's revision moved while page 0 loaded
    const fresh = cache.ensure(new Set([0]), () => after.promise);
    // the answer to the load started before the change comes back last, or first: never kept
    after.resolve(['SUCCESS', 'copied 3/3', 'created']);
    await fresh;
    before.resolve(['copied 2/3', 'created']);
    await stale;
    expect(cache.get(0)).toEqual(['SUCCESS', 'copied 3/3', 'created']);

    const late = deferred<string[]>();
    const lateFresh = deferred<string[]>();
    const staleAgain = cache.ensure(new Set([1]), () => late.promise);
    cache.invalidate();
    const freshAgain = cache.ensure(new Set([1]), () => lateFresh.promise);
    late.resolve(['old']);
    await staleAgain;
    expect(cache.get(1)).toBeUndefined();
    lateFresh.resolve(['new']);
    await freshAgain;
    expect(cache.get(1)).toEqual(['new']);
  });

  it('drops the pages far from the view', async () => {
    const cache = new PageCache<number>(() => undefined);
    const load = async (p: number) => [p];
    await cache.ensure(new Set([0, 1]), load);
    await cache.ensure(new Set([10]), load);
    expect(cache.get(0)).toBeUndefined();
    expect(cache.get(1)).toBeUndefined();
    expect(cache.get(10)).toEqual([10]);
  });

  it('lets a failed load be tried again', async () => {
    const cache = new PageCache<string>(() => undefined);
    await expect(cache.ensure(new Set([0]), () => Promise.reject(new Error('service unavailable')))).rejects.toThrow('service unavailable');
    await cache.ensure(new Set([0]), async () => ['back']);
    expect(cache.get(0)).toEqual(['back']);
  });
});
