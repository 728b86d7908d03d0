/**
 * One subscription to the service, fanned out to every store that follows pushed events.
 * A store registers with `onPushed` when it is created; App.vue owns the subscription.
 */
import type { ObjectKind, Pushed } from '../../src-shared/api';

const listeners = new Set<(p: Pushed) => void>();

export function onPushed(listener: (p: Pushed) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function dispatch(p: Pushed): void {
  for (const l of listeners) l(p);
}

/**
 * Calls `refresh` after pushed events of `kinds`, at most once every `ms`: a burst of events costs
 * one reload, not one each. A failed reload is dropped; the next event tries again.
 */
export function refreshOn(kinds: readonly ObjectKind[], refresh: () => Promise<unknown>, ms = 200): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stop = onPushed((p) => {
    if (p.channel !== 'event' || !kinds.includes(p.event.kind) || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void refresh().catch(() => undefined);
    }, ms);
  });
  return () => {
    stop();
    clearTimeout(timer);
  };
}
