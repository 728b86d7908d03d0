import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { FondsEvent } from '../../src-shared/api';
import type { NbOrder, NbServedDissemination } from '../../src-shared/domain/nb';
import type { Progress } from '../../src-shared/domain/upload';
import { call } from '../api/client';
import { onPushed, refreshOn } from '../api/events';
import { errorGuard } from './guard';

export type NbSelection = { kind: 'served' | 'order'; id: string };

/** NB dissemination service (seed 004): what this Fonds serves, and what it ordered elsewhere. */
export const useNb = defineStore('nb', () => {
  const served = ref<NbServedDissemination[]>([]);
  const servedTotal = ref(0);
  const orders = ref<NbOrder[]>([]);
  const ordersTotal = ref(0);
  const selection = ref<NbSelection>();
  const timeline = ref<FondsEvent[]>([]);
  const progress = ref<Record<string, Progress>>({});
  const error = ref<string>();
  const guard = errorGuard(error);
  let asks = 0;

  async function refresh(): Promise<void> {
    const ticket = ++asks;
    const [s, o] = await Promise.all([call('nb.disseminations.list', { limit: 500 }), call('nb.orders.list', { limit: 500 })]);
    if (ticket !== asks) return;
    served.value = s.items;
    servedTotal.value = s.total;
    orders.value = o.items;
    ordersTotal.value = o.total;
    await loadTimeline();
  }

  async function loadTimeline(): Promise<void> {
    const sel = selection.value;
    if (!sel) return void (timeline.value = []);
    const page = sel.kind === 'served' ? await call('nb.disseminations.timeline', { id: sel.id, limit: 200 }) : await call('nb.orders.timeline', { id: sel.id, limit: 200 });
    if (selection.value === sel) timeline.value = page.items;
  }

  async function select(sel: NbSelection | undefined): Promise<void> {
    selection.value = sel;
    await loadTimeline();
  }

  onPushed((p) => {
    if (p.channel === 'progress' && p.progress.kind === 'nb_dissemination') progress.value = { ...progress.value, [p.progress.objectId]: p.progress.progress };
  });
  refreshOn(['nb_dissemination', 'nb_order'], refresh);

  /** Orders a dissemination from an NB-style service; the token is sent to the service and kept sealed. */
  const order = (input: { baseUrl: string; token: string; archiveId: string; priority: number }) =>
    guard(async () => {
      const o = await call('nb.orders.create', input);
      await refresh();
      await select({ kind: 'order', id: o.id });
      return o;
    });

  /** The order's download link: the kept one while valid, else a fresh one. */
  const link = (id: string) =>
    guard(async () => {
      const l = await call('nb.orders.link', { id });
      await refresh();
      return l;
    });

  return { served, servedTotal, orders, ordersTotal, selection, timeline, progress, error, refresh, select, order, link };
});
