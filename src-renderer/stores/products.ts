import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { AmqpStatus, ComposedPatch, DeadLetter, FondsEvent, OutboxItem, PatchInput, PatchRequest, Product, ProductSummary } from '../../src-shared/api';
import { call } from '../api/client';
import { refreshOn } from '../api/events';
import { errorGuard } from './guard';

/**
 * The product catalogue (REGARDS features), the selected product with its timeline and its patch
 * requests, the broker's state, the patch requests waiting in the outbox (one of them open for
 * editing), and the dead letters. Kept current from pushed `product` and `patch_request` events
 * (a dead letter recorded is a `patch_request` event too).
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
  /** the waiting patch request open for editing, and its outbox message as it is now */
  const editingRequest = ref<PatchRequest>();
  const editing = ref<OutboxItem>();
  const amqp = ref<AmqpStatus>();
  /** dead letters: how many, bumped when they changed (the virtual list drops its pages), the one shown */
  const deadLetterTotal = ref(0);
  const deadLetterRevision = ref(0);
  const selectedDeadLetter = ref<DeadLetter>();
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
    deadLettersCounted(status.deadLetters);
    if (editing.value) await loadEditing();
    if (selectedUrn.value) await loadSelected();
  }

  /** Dead letters are only ever added: a new count means new rows at the top of the list. */
  function deadLettersCounted(n: number): void {
    if (n === deadLetterTotal.value) return;
    deadLetterTotal.value = n;
    deadLetterRevision.value++;
  }

  /** A page of dead letters, newest first, for the virtual list. */
  async function loadDeadLetters(offset: number, limit: number): Promise<DeadLetter[]> {
    const page = await call('amqp.deadLetters', { offset, limit });
    deadLettersCounted(page.total);
    return page.items;
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
      closeEdit();
      selectedUrn.value = urn;
      await loadSelected();
    });

  async function loadEditing(): Promise<void> {
    const id = editing.value?.id;
    if (id === undefined) return;
    const o = await call('outbox.get', { id });
    if (editing.value?.id === id) editing.value = o;
  }

  /** Opens a waiting patch request's outbox message (headers and body) for editing. */
  const edit = (w: PatchRequest) =>
    guard(async () => {
      if (!w.outboxId) return;
      const o = await call('outbox.get', { id: w.outboxId });
      editingRequest.value = w;
      editing.value = o;
    });
  function closeEdit(): void {
    editing.value = undefined;
    editingRequest.value = undefined;
  }
  /** Saves the edited message (`outbox.edit`): it goes out as saved. False when refused (`error` says why). */
  async function saveEdit(change: { headers: Record<string, unknown>; body: string }): Promise<boolean> {
    const id = editing.value?.id;
    if (id === undefined) return false;
    const saved = await guard(() => call('outbox.edit', { id, ...change }));
    if (saved && editing.value?.id === id) editing.value = saved;
    return saved !== undefined;
  }

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
      // a cancelled request is no longer waiting: nothing left to edit here
      if (editing.value?.id === outboxId) closeEdit();
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
    editingRequest,
    editing,
    amqp,
    deadLetterTotal,
    deadLetterRevision,
    selectedDeadLetter,
    error,
    refresh,
    loadDeadLetters,
    select,
    edit,
    closeEdit,
    saveEdit,
    toggle,
    toggleAll,
    compose,
    send,
    cancel,
    sendNow,
    create,
  };
});
