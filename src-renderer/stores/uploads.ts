import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { FondsEvent, Progress, Pushed, Upload } from '../../src-shared/api';
import { call, pathForFile, putFile } from '../api/client';
import { onPushed as follow } from '../api/events';
import { errorGuard } from './guard';

/** A dropped file with the relative path it has inside the delivery. */
export interface PickedFile {
  file: File;
  rel: string;
}

export const useUploads = defineStore('uploads', () => {
  const items = ref<Upload[]>([]);
  const total = ref(0);
  const selectedId = ref<string | undefined>();
  const progress = ref<Record<string, Progress>>({});
  const error = ref<string | undefined>();
  const pushing = ref<{ done: number; total: number } | undefined>();
  /** bumped on each event of the selected upload, so its views reload */
  const revision = ref(0);

  const selected = computed(() => items.value.find((u) => u._id === selectedId.value));

  async function refresh(): Promise<void> {
    const page = await call('uploads.list', { limit: 200 });
    items.value = page.items;
    total.value = page.total;
  }

  /** the latest request per upload: an older answer arriving late must not overwrite a newer one */
  const asked = new Map<string, number>();
  let asks = 0;

  async function refreshOne(id: string): Promise<void> {
    const ticket = ++asks;
    asked.set(id, ticket);
    const u = await call('uploads.get', { id });
    if (asked.get(id) !== ticket) return;
    const i = items.value.findIndex((x) => x._id === id);
    if (i >= 0) items.value[i] = u;
    else {
      items.value.unshift(u);
      total.value++;
    }
  }

  function onPushed(p: Pushed): void {
    if (p.channel === 'progress') {
      if (p.progress.kind === 'upload') progress.value[p.progress.objectId] = p.progress.progress;
      return;
    }
    const e: FondsEvent = p.event;
    if (e.kind !== 'upload') return;
    void refreshOne(e.objectId);
    if (e.type.startsWith('status.') && e.type !== 'status.CHECKING') delete progress.value[e.objectId];
    if (e.objectId === selectedId.value) revision.value++;
  }

  follow(onPushed);

  const guard = errorGuard(error);

  /** Electron: dropped items have paths, checked in place. Browser: files are pushed, then checked. */
  async function ingestDropped(files: PickedFile[], rootPaths: string[]): Promise<void> {
    await guard(async () => {
      const paths = rootPaths.length ? rootPaths : files.map((f) => pathForFile(f.file)).filter((p): p is string => !!p);
      if (paths.length) {
        const u = await call('uploads.ingestPaths', { paths });
        selectedId.value = u._id;
        await refreshOne(u._id);
        return;
      }
      if (!files.length) return;
      const top = new Set(files.map((f) => f.rel.split('/')[0]));
      const name = top.size === 1 ? [...top][0] : `${files.length} files`;
      const single = top.size === 1 && files.every((f) => f.rel.includes('/'));
      const u = await call('uploads.create', { name });
      selectedId.value = u._id;
      await refreshOne(u._id);
      pushing.value = { done: 0, total: files.length };
      for (const f of files) {
        await putFile(u._id, single ? f.rel.slice(f.rel.indexOf('/') + 1) : f.rel, f.file);
        pushing.value = { done: pushing.value.done + 1, total: files.length };
      }
      pushing.value = undefined;
      await call('uploads.close', { id: u._id });
    });
    pushing.value = undefined;
  }

  async function ingestPath(p: string): Promise<void> {
    await guard(async () => {
      const u = await call('uploads.ingestPaths', { paths: [p] });
      selectedId.value = u._id;
      await refreshOne(u._id);
    });
  }

  const cancel = (id: string) => guard(() => call('uploads.cancel', { id }).then(() => refreshOne(id)));
  const recheck = (id: string) => guard(() => call('uploads.recheck', { id }).then(() => refreshOne(id)));

  return { items, total, selectedId, selected, progress, error, pushing, revision, refresh, onPushed, ingestDropped, ingestPath, cancel, recheck };
});
