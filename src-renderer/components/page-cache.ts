/**
 * The pages of rows a VirtualList holds, loaded on demand (plain TypeScript, tested under Node).
 *
 * When the data behind the list changes (`invalidate`), every page is dropped, and a load that
 * was still in flight is not kept when it ends: it would put back rows from before the change (a
 * timeline without its newest events, for as long as nothing else changed). The page is loaded
 * again instead, by the `ensure` that follows the change.
 */
export class PageCache<T> {
  private pages = new Map<number, T[]>();
  /** page → the generation its load in flight was started for */
  private readonly loading = new Map<number, number>();
  private generation = 0;

  /** `changed` is given the pages after each change (a new Map: for a shallow ref) */
  constructor(private readonly changed: (pages: ReadonlyMap<number, T[]>) => void) {}

  get(page: number): T[] | undefined {
    return this.pages.get(page);
  }

  /** The data changed: drops every page; loads in flight will not be kept. */
  invalidate(): void {
    this.generation++;
    this.pages = new Map();
    this.changed(this.pages);
  }

  /**
   * Loads the `needed` pages not held yet, one after the other, then drops the pages more than
   * two away from every needed one (memory stays bounded however far the list scrolls).
   */
  async ensure(needed: ReadonlySet<number>, load: (page: number) => Promise<T[]>): Promise<void> {
    const generation = this.generation;
    for (const p of needed) {
      if (this.pages.has(p) || this.loading.get(p) === generation) continue;
      this.loading.set(p, generation);
      let items: T[];
      try {
        items = await load(p);
      } finally {
        if (this.loading.get(p) === generation) this.loading.delete(p);
      }
      // the data changed while this page loaded: what it read is stale, a newer ensure loads it
      if (generation !== this.generation) return;
      this.pages = new Map(this.pages).set(p, items);
      this.changed(this.pages);
    }
    // out of view: no need to tell the view
    for (const p of this.pages.keys()) if (![...needed].some((n) => Math.abs(n - p) <= 2)) this.pages.delete(p);
  }
}
