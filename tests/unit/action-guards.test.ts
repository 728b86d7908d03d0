/**
 * The guards of a screen that both acts and reloads in the background (the Messages screen): a
 * reload never disables a button under a person's pointer, overlapping actions keep `busy` until
 * the last ends, and an action's refusal stays shown through the reloads that follow it.
 */
import { describe, expect, it } from 'vitest';
import { ref } from 'vue';
import { actionGuards } from '../../src-renderer/stores/guard';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('actionGuards', () => {
  it('a background reload leaves busy false while it runs', async () => {
    const { read, busy } = actionGuards(ref<string | undefined>());
    const d = deferred<number>();
    const p = read(() => d.promise);
    expect(busy.value).toBe(false);
    d.resolve(1);
    expect(await p).toBe(1);
    expect(busy.value).toBe(false);
  });

  it('overlapping actions keep busy until the last one ends', async () => {
    const { act, busy } = actionGuards(ref<string | undefined>());
    const a = deferred<string>();
    const b = deferred<string>();
    const pa = act(() => a.promise);
    const pb = act(() => b.promise);
    expect(busy.value).toBe(true);
    a.resolve('a');
    await pa;
    expect(busy.value).toBe(true);
    b.reject(new Error('refused'));
    expect(await pb).toBeUndefined();
    expect(busy.value).toBe(false);
  });

  it("keeps an action's error through a successful reload, and clears it at the next action", async () => {
    const error = ref<string | undefined>();
    const { act, read } = actionGuards(error);
    await act(() => Promise.reject(new Error("Outbox item 2 is 'sent': it cannot be cancelled.")));
    expect(error.value).toBe("Outbox item 2 is 'sent': it cannot be cancelled.");
    await read(() => Promise.resolve([]));
    expect(error.value).toBe("Outbox item 2 is 'sent': it cannot be cancelled.");
    await read(() => Promise.reject(new Error('service unreachable')));
    expect(error.value).toBe("Outbox item 2 is 'sent': it cannot be cancelled."); // the refusal is what the person needs
    await act(() => Promise.resolve('ok'));
    expect(error.value).toBeUndefined();
  });

  it("shows a reload's error until a reload succeeds", async () => {
    const error = ref<string | undefined>();
    const { read } = actionGuards(error);
    await read(() => Promise.reject(new Error('service unreachable')));
    expect(error.value).toBe('service unreachable');
    await read(() => Promise.resolve(1));
    expect(error.value).toBeUndefined();
  });
});
