import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { AmqpStatus, ComposedPatch, FondsEvent, PatchInput, PatchRequest, Product, ProductSummary } from '../../src-shared/api';
import { call } from '../api/client';
import { refreshOn } from '../api/events';
import { errorGuard } from './guard';

/**
 * The product catalogue (REGARDS features), the selected product with its timeline and its patch
 * requests, the broker's state, and the patch requests waiting in the outbox. Kept current from
 * pushed `product` and `patch_request` events.
 */
export const useProducts = defineStore('products', () => {
  const q = ref('');
  const items = ref<ProductSummary[]>([]);
  const total = ref(0);
  /** products ticked in the list (for "Notify selection") */
  const selectedUrns = ref<string[]>([]);
  const selectedUrn = ref<string | undefined>();
  const selected = ref<Product>();
  const timeline = ref<FondsEvent[]>([]);
  const timelineTotal = ref(0);
  const patches = ref<PatchRequest[]>([]);
  /** patch requests Fonds sent that the broker has not confirmed yet (they wait in the outbox) */
  const waiting = ref<PatchRequest[]>([]);
  const amqp = ref<AmqpStatus>();
  const error = ref<string | undefined>();
  const guard = errorGuard(error);
  let asks = 0;

  async function refresh(): Promise<void> {
    const ticket = ++asks;
    const [page, status, queued] = await Promise.all([
      call('products.list', { ...(q.value.trim() ? { q: q.value.trim() } : {}), limit: 1000 }),
      call('amqp.status', {}),
      call('patches.list', { direction: 'sent', state: 'QUEUED', limit: 200 }),
    ]);
    if (ticket !== asks) return;
    items.value = page.items;
    total.value = page.total;
    amqp.value = status;
    waiting.value = queued.items;
    if (selectedUrn.value) await loadSelected();
  }

  async function loadSelected(): Promise<void> {
    const urn = selectedUrn.value;
    if (!urn) {
      selected.value = undefined;
      return;
    }
    const [p, tl, pr] = await Promise.all([call('products.get', { urn }), call('products.timeline', { urn, limit: 300 }), call('patches.list', { urn, limit: 200 })]);
    if (selectedUrn.value !== urn) return;
    selected.value = p;
    timeline.value = tl.items;
    timelineTotal.value = tl.total;
    patches.value = pr.items;
  }

  const select = (urn: string | undefined) =>
    guard(async () => {
      selectedUrn.value = urn;
      await loadSelected();
    });

  function toggle(urn: string): void {
    selectedUrns.value = selectedUrns.value.includes(urn) ? selectedUrns.value.filter((u) => u !== urn) : [...selectedUrns.value, urn];
  }
  function toggleAll(): void {
    selectedUrns.value = selectedUrns.value.length === items.value.length ? [] : items.value.map((p) => p.urn);
  }

  /** Exactly what a patch request would put on the wire; nothing is sent. */
  const compose = (input: PatchInput): Promise<ComposedPatch | undefined> => guard(() => call('patches.compose', input));
  /** Queues the patch request in the outbox (it goes out once the broker is connected). */
  const send = (input: PatchInput): Promise<PatchRequest | undefined> =>
    guard(async () => {
      const r = await call('patches.send', input);
      await refresh();
      return r;
    });
  const cancel = (outboxId: number) =>
    guard(async () => {
      await call('outbox.cancel', { id: outboxId });
      await refresh();
    });
  const sendNow = (outboxId: number) =>
    guard(async () => {
      await call('outbox.sendNow', { id: outboxId });
      await refresh();
    });
  const create = (input: { providerId: string; properties: Record<string, unknown>; storedDataId?: string; files?: Product['files'] }) =>
    guard(async () => {
      const p = await call('products.create', input);
      await refresh();
      await select(p.urn);
      return p;
    });

  refreshOn(['product', 'patch_request'], refresh);

  return {
    q,
    items,
    total,
    selectedUrns,
    selectedUrn,
    selected,
    timeline,
    timelineTotal,
    patches,
    waiting,
    amqp,
    error,
    refresh,
    select,
    toggle,
    toggleAll,
    compose,
    send,
    cancel,
    sendNow,
    create,
  };
});
