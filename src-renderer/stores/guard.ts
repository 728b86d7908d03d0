import { computed, ref, type Ref } from 'vue';

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Runs an action, putting its error message (if any) into `error` instead of throwing. */
export function errorGuard(error: Ref<string | undefined>) {
  return async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    error.value = undefined;
    try {
      return await fn();
    } catch (err) {
      error.value = messageOf(err);
      return undefined;
    }
  };
}

/**
 * Two guards for a screen that both acts and reloads in the background:
 * - `act` runs what a person asked for: `busy` is true while any action runs (a count, so that
 *   overlapping actions do not clear each other), and its error replaces the shown one;
 * - `read` runs a reload (pushed events, timers, tab changes): it never sets `busy`, so a button is
 *   never disabled under a person's pointer by a refresh they did not ask for, and it clears only
 *   an error of its own kind, so an action's refusal stays shown through the reloads that follow.
 */
export function actionGuards(error: Ref<string | undefined>) {
  const running = ref(0);
  let errorFrom: 'act' | 'read' | undefined;
  const fail = (from: 'act' | 'read', err: unknown) => {
    error.value = messageOf(err);
    errorFrom = from;
  };
  async function act<T>(fn: () => Promise<T>): Promise<T | undefined> {
    error.value = undefined;
    errorFrom = undefined;
    running.value++;
    try {
      return await fn();
    } catch (err) {
      fail('act', err);
      return undefined;
    } finally {
      running.value--;
    }
  }
  async function read<T>(fn: () => Promise<T>): Promise<T | undefined> {
    try {
      const r = await fn();
      if (errorFrom === 'read') {
        error.value = undefined;
        errorFrom = undefined;
      }
      return r;
    } catch (err) {
      if (errorFrom !== 'act') fail('read', err);
      return undefined;
    }
  }
  return { act, read, busy: computed(() => running.value > 0) };
}
