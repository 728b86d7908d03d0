import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { Execution, Progress, Pushed, StoredData } from '../../src-shared/api';
import { call } from '../api/client';
import { onPushed as follow } from '../api/events';
import { errorGuard } from './guard';

/** Executions and stored data, kept current from pushed events. */
export const useExecutions = defineStore('executions', () => {
  const items = ref<Execution[]>([]);
  const storedData = ref<StoredData[]>([]);
  const selectedId = ref<string | undefined>();
  const progress = ref<Record<string, Progress>>({});
  const error = ref<string | undefined>();
  const revision = ref(0);
  const asked = new Map<string, number>();
  let asks = 0;

  async function refresh(): Promise<void> {
    const [ex, sd] = await Promise.all([call('executions.list', { limit: 200 }), call('storedData.list', { limit: 500 })]);
    items.value = ex.items;
    storedData.value = sd.items;
  }

  async function refreshOne(id: string): Promise<void> {
    const ticket = ++asks;
    asked.set(id, ticket);
    const e = await call('executions.get', { id });
    if (asked.get(id) !== ticket) return;
    const i = items.value.findIndex((x) => x._id === id);
    if (i >= 0) items.value[i] = e;
    else items.value.unshift(e);
  }

  let sdTimer: ReturnType<typeof setTimeout> | undefined;
  function onPushed(p: Pushed): void {
    if (p.channel === 'progress') {
      if (p.progress.kind === 'execution') progress.value[p.progress.objectId] = p.progress.progress;
      return;
    }
    const e = p.event;
    if (e.kind === 'execution') {
      void refreshOne(e.objectId);
      if (e.objectId === selectedId.value) revision.value++;
      if (e.type === 'status.SUCCESS' || e.type === 'status.FAILURE') delete progress.value[e.objectId];
    }
    if (e.kind === 'stored_data' && !sdTimer) {
      sdTimer = setTimeout(() => {
        sdTimer = undefined;
        void call('storedData.list', { limit: 500 }).then((r) => (storedData.value = r.items));
      }, 300);
    }
  }
  follow(onPushed);

  const guard = errorGuard(error);

  /** Creates and launches an archive-to-archive execution. */
  const start = (uploads: string[], output: { name: string; tags: string[] } | { id: string }) =>
    guard(async () => {
      const e = await call('executions.create', {
        processing: 'archive-to-archive',
        inputs: { upload: uploads },
        output: { stored_data: 'id' in output ? { _id: output.id } : { name: output.name, storage_tags: output.tags } },
      });
      selectedId.value = e._id;
      await refreshOne(e._id);
      // the new stored data is listed at once, not at its first event
      storedData.value = (await call('storedData.list', { limit: 500 })).items;
      await call('executions.launch', { id: e._id });
      await refreshOne(e._id);
    });
  const cancel = (id: string) => guard(() => call('executions.cancel', { id }).then(() => refreshOne(id)));
  /** copies again the failed files and those a cancel left */
  const retry = (id: string) => guard(() => call('executions.retryFailed', { id }).then(() => refreshOne(id)));

  return { items, storedData, selectedId, progress, error, revision, refresh, start, cancel, retry };
});
