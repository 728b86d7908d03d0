import type { Ref } from 'vue';

/** Runs an action, putting its error message (if any) into `error` instead of throwing. */
export function errorGuard(error: Ref<string | undefined>) {
  return async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    error.value = undefined;
    try {
      return await fn();
    } catch (err) {
      error.value = err instanceof Error ? err.message : String(err);
      return undefined;
    }
  };
}
