import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { FondsEvent, Message, MessageDetail, MessageFacets, OutboxItem, PurgeReport, PurgeRules, Pushed, RescanSummary } from '../../src-shared/api';
import type { MessageStatus } from '../../src-shared/domain/message';
import { call } from '../api/client';
import { onPushed as follow } from '../api/events';
import { actionGuards } from './guard';

export interface MessageFilters {
  type: string;
  status: string;
  state: '' | 'ok' | 'unknown' | 'unparseable';
  from: string;
  to: string;
  q: string;
}

/** How many items of a dry run (or of a purge's report) are listed; the totals count them all. */
const PREVIEW_LISTED_MAX = 10_000;

/**
 * The message directory, Fonds' outbox and the purge, for the review screen. Everything comes from
 * the local service: it works with no network at all.
 */
export const useMessages = defineStore('messages', () => {
  const filters = ref<MessageFilters>({ type: '', status: '', state: '', from: '', to: '', q: '' });
  const total = ref(0);
  const facets = ref<MessageFacets | undefined>();
  /** bumped when the list must be reloaded */
  const revision = ref(0);
  const selectedId = ref<string | undefined>();
  const detail = ref<MessageDetail | undefined>();
  const timeline = ref<FondsEvent[]>([]);
  const error = ref<string | undefined>();
  const lastRescan = ref<RescanSummary | undefined>();
  const { act, read, busy } = actionGuards(error);

  const outboxStatus = ref<'' | OutboxItem['status']>('');
  const outbox = ref<OutboxItem[]>([]);
  const outboxTotal = ref(0);
  const selectedOutboxId = ref<number | undefined>();
  const selectedOutbox = computed(() => outbox.value.find((o) => o.id === selectedOutboxId.value));

  const rules = ref<PurgeRules | undefined>();
  const preview = ref<PurgeReport | undefined>();
  const lastPurge = ref<PurgeReport | undefined>();

  function query() {
    const f = filters.value;
    return {
      ...(f.type ? { type: f.type } : {}),
      ...(f.status ? { status: f.status } : {}),
      ...(f.state ? { state: f.state } : {}),
      ...(f.from ? { from: f.from } : {}),
      ...(f.to ? { to: f.to } : {}),
      ...(f.q.trim() ? { q: f.q.trim() } : {}),
    };
  }

  /** A page of the filtered list, for the virtual list. */
  async function loadPage(offset: number, limit: number): Promise<Message[]> {
    const page = await call('messages.list', { ...query(), offset, limit });
    total.value = page.total;
    return page.items;
  }

  async function refresh(): Promise<void> {
    await read(async () => {
      const [f, page] = await Promise.all([call('messages.facets', {}), call('messages.list', { ...query(), limit: 1 })]);
      facets.value = f;
      total.value = page.total;
      revision.value++;
    });
  }

  async function loadDetail(id: string): Promise<void> {
    const [d, tl] = await Promise.all([call('messages.get', { id }), call('messages.timeline', { id, limit: 50 })]);
    if (selectedId.value !== id) return;
    detail.value = d;
    timeline.value = tl.items;
  }

  async function select(id: string): Promise<void> {
    selectedId.value = id;
    detail.value = undefined;
    timeline.value = [];
    await read(() => loadDetail(id));
  }

  async function setStatus(status: MessageStatus): Promise<void> {
    const id = selectedId.value;
    if (!id) return;
    await act(async () => {
      await call('messages.setStatus', { id, status });
      await loadDetail(id);
      revision.value++;
    });
  }

  async function rescan(): Promise<void> {
    const r = await act(() => call('messages.rescan', {}));
    if (r) lastRescan.value = r;
    await refresh();
  }

  // ---- outbox ----
  async function refreshOutbox(): Promise<void> {
    await read(async () => {
      const page = await call('outbox.list', { ...(outboxStatus.value ? { status: outboxStatus.value } : {}), limit: 500 });
      outbox.value = page.items;
      outboxTotal.value = page.total;
    });
  }

  async function outboxAction(action: 'outbox.cancel' | 'outbox.retry' | 'outbox.sendNow', id: number): Promise<void> {
    await act(() => call(action, { id }));
    await refreshOutbox();
  }

  /** Saves a change read by `OutboxEditor` (which refuses headers or a body that are not JSON). */
  async function editOutbox(id: number, headers: Record<string, unknown>, body: string): Promise<boolean> {
    const done = await act(() => call('outbox.edit', { id, headers, body }));
    await refreshOutbox();
    return done !== undefined;
  }

  // ---- purge: always a dry run first, then only what was shown ----
  async function loadRules(): Promise<void> {
    const r = await read(() => call('purge.rules', {}));
    if (r) rules.value = r;
  }

  async function dryRun(): Promise<void> {
    lastPurge.value = undefined;
    const r = await act(() => call('purge.run', { dryRun: true, limit: PREVIEW_LISTED_MAX }));
    preview.value = r;
  }

  /**
   * Deletes what the preview selected and nothing else: the service kept the dry run's whole
   * selection (listed or not) under its runId, and checks each message again. A message that
   * matches only since the preview waits for the next one.
   */
  async function confirmPurge(): Promise<void> {
    const p = preview.value;
    if (!p || p.totals.messages === 0) return;
    const r = await act(() => call('purge.run', { dryRun: false, confirm: p.runId, limit: PREVIEW_LISTED_MAX }));
    if (r) {
      lastPurge.value = r;
      preview.value = undefined;
    }
    await refresh();
  }

  function cancelPreview(): void {
    preview.value = undefined;
  }

  // ---- pushed events: reload at most every 300 ms ----
  let pendingReload: ReturnType<typeof setTimeout> | undefined;
  function onPushed(p: Pushed): void {
    if (p.channel !== 'event' || p.event.kind !== 'message') return;
    const touched = p.event.objectId;
    if (touched === selectedId.value && p.event.type === 'purged') {
      selectedId.value = undefined;
      detail.value = undefined;
    }
    if (pendingReload) return;
    pendingReload = setTimeout(() => {
      pendingReload = undefined;
      void refresh();
      if (selectedId.value) void loadDetail(selectedId.value).catch(() => undefined);
    }, 300);
  }
  follow(onPushed);

  return {
    filters,
    total,
    facets,
    revision,
    selectedId,
    detail,
    timeline,
    error,
    lastRescan,
    busy,
    outboxStatus,
    outbox,
    outboxTotal,
    selectedOutboxId,
    selectedOutbox,
    rules,
    preview,
    lastPurge,
    loadPage,
    refresh,
    select,
    setStatus,
    rescan,
    refreshOutbox,
    outboxAction,
    editOutbox,
    loadRules,
    dryRun,
    confirmPurge,
    cancelPreview,
    onPushed,
  };
});
