import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { FondsEvent, NotifyResult, ProductDisseminationSummary } from '../../src-shared/api';
import type { Dissemination, DisseminationStatus, Recipient, RecipientInput } from '../../src-shared/domain/dissemination';
import { call } from '../api/client';
import { refreshOn } from '../api/events';
import { errorGuard } from './guard';

export interface DisseminationFilters {
  status: DisseminationStatus | '';
  recipientLabel: string;
  q: string;
}

/** Disseminations, recipients and unmatched acknowledgements, kept current from pushed events. */
export const useDisseminations = defineStore('disseminations', () => {
  const items = ref<Dissemination[]>([]);
  const total = ref(0);
  const filters = ref<DisseminationFilters>({ status: '', recipientLabel: '', q: '' });
  const recipients = ref<Recipient[]>([]);
  const selectedId = ref<string | undefined>();
  const selected = ref<Dissemination>();
  const timeline = ref<FondsEvent[]>([]);
  const summary = ref<ProductDisseminationSummary>();
  const unmatched = ref<FondsEvent[]>([]);
  const unmatchedTotal = ref(0);
  const error = ref<string | undefined>();
  /** the notify dialog: open, with the products it was opened for (empty: pick them in the dialog) */
  const notifyOpen = ref(false);
  const notifyUrns = ref<string[]>([]);
  let asks = 0;

  async function refresh(): Promise<void> {
    const ticket = ++asks;
    const f = filters.value;
    const [page, recs, un] = await Promise.all([
      call('disseminations.list', { ...(f.status ? { status: f.status } : {}), ...(f.recipientLabel ? { recipientLabel: f.recipientLabel } : {}), ...(f.q.trim() ? { q: f.q.trim() } : {}), limit: 500 }),
      call('recipients.list', {}),
      call('disseminations.unmatchedAcks', { limit: 200 }),
    ]);
    if (ticket !== asks) return;
    items.value = page.items;
    total.value = page.total;
    recipients.value = recs;
    unmatched.value = un.items;
    unmatchedTotal.value = un.total;
    if (selectedId.value) await loadSelected();
  }

  async function loadSelected(): Promise<void> {
    const id = selectedId.value;
    if (!id) {
      selected.value = undefined;
      return;
    }
    const d = await call('disseminations.get', { id });
    const [tl, sum] = await Promise.all([call('disseminations.timeline', { id, limit: 200 }), call('products.disseminationStatus', { urn: d.urn })]);
    if (selectedId.value !== id) return;
    selected.value = d;
    timeline.value = tl.items;
    summary.value = sum;
  }

  async function select(id: string | undefined): Promise<void> {
    selectedId.value = id;
    await loadSelected();
  }

  refreshOn(['dissemination'], refresh);

  const guard = errorGuard(error);

  const ack = (id: string) => guard(async () => {
    await call('disseminations.ack', { id });
    await refresh();
  });
  const retry = (id: string) => guard(async () => {
    await call('disseminations.retry', { id });
    await refresh();
  });
  const saveRecipient = (input: RecipientInput) => guard(async () => {
    const r = await call('recipients.save', input);
    await refresh();
    return r;
  });
  const deleteRecipient = (label: string) => guard(async () => {
    await call('recipients.delete', { recipientLabel: label });
    await refresh();
  });
  /** Notifies products to recipients; answers what was created and what was skipped, and why. */
  const notify = (urns: string[], labels: string[]): Promise<NotifyResult | undefined> =>
    guard(async () => {
      const r = await call('disseminations.notify', { urns, recipients: labels });
      await refresh();
      return r;
    });
  function openNotify(urns: string[] = []): void {
    notifyUrns.value = urns;
    notifyOpen.value = true;
  }

  return {
    items,
    total,
    filters,
    recipients,
    selectedId,
    selected,
    timeline,
    summary,
    unmatched,
    unmatchedTotal,
    error,
    notifyOpen,
    notifyUrns,
    refresh,
    select,
    ack,
    retry,
    saveRecipient,
    deleteRecipient,
    notify,
    openNotify,
  };
});
