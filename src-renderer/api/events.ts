/**
 * One subscription to the service, fanned out to every store that follows pushed events.
 * A store registers with `onPushed` when it is created; App.vue owns the subscription.
 */
import type { Pushed } from '../../src-shared/api';

const listeners = new Set<(p: Pushed) => void>();

export function onPushed(listener: (p: Pushed) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function dispatch(p: Pushed): void {
  for (const l of listeners) l(p);
}
