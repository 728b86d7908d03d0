/**
 * Confirming a purge from the Messages screen: what is sent back to the service after a person
 * confirmed a dry run. The store talks to a stand-in for the service that records each call.
 */
import { createPinia, setActivePinia } from 'pinia';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { PurgeItem, PurgeReport } from '../../src-shared/domain/message';

const calls: Array<{ name: string; input: Record<string, unknown> }> = [];
let answer: (name: string, input: Record<string, unknown>) => unknown = () => undefined;
vi.mock('../../src-renderer/api/client', () => ({
  call: vi.fn(async (name: string, input: Record<string, unknown>) => {
    calls.push({ name, input });
    return answer(name, input);
  }),
}));

/** What this test uses of the store. */
interface MessagesStore {
  preview: PurgeReport | undefined;
  lastPurge: PurgeReport | undefined;
  error: string | undefined;
  dryRun(): Promise<void>;
  confirmPurge(): Promise<void>;
}
// loaded by a path the type checker does not follow: the store's imports reach the renderer's
// HTTP client, typed against the DOM, which the Node tsconfig of the tests does not include
const STORE_MODULE = '../../src-renderer/stores/messages';
const { useMessages } = (await import(/* @vite-ignore */ STORE_MODULE)) as { useMessages: () => MessagesStore };

function item(id: string): PurgeItem {
  return { id, type: 'ArchiveTransfer', status: 'processed', date: '2020-01-01T00:00:00.000Z', task: 'Transferts', reason: 'old', bytes: 10, files: 1, deleted: false };
}

/** A dry run that selected `selected` messages and listed the first `listed`. */
function dryRun(selected: number, listed: number): PurgeReport {
  return {
    runId: '6f1c2d4e-0000-4000-8000-000000000001',
    dryRun: true,
    trigger: 'ui',
    now: '2025-01-01T00:00:00.000Z',
    confirmUntil: '2025-01-01T01:00:00.000Z',
    startedAt: '2025-01-01T00:00:00.000Z',
    finishedAt: '2025-01-01T00:00:01.000Z',
    tasks: [{ name: 'Transferts', delay: 'P7D', cutoff: '2024-12-25T00:00:00.000Z', messages: selected, bytes: selected * 10 }],
    items: Array.from({ length: listed }, (_, i) => item(`M${i}`)),
    itemsOmitted: selected - listed,
    totals: { messages: selected, bytes: selected * 10, files: selected, skipped: 0 },
  };
}

beforeEach(() => {
  setActivePinia(createPinia());
  calls.length = 0;
});

describe('confirming a purge from its dry run', () => {
  it.each([
    ['every selected message was listed', 3, 3],
    ['more were selected than the list shows (over 10,000)', 10_001, 10_000],
  ])('deletes only the dry run’s selection when %s', async (_case, selected, listed) => {
    const preview = dryRun(selected, listed);
    answer = (name, input) => {
      if (name === 'purge.run' && input.dryRun === true) return preview;
      if (name === 'purge.run') return { ...preview, dryRun: false, items: [], itemsOmitted: 0 };
      if (name === 'messages.facets') return { directory: '/m', total: 0, watching: true, types: [], statuses: [], states: [] };
      if (name === 'messages.list') return { items: [], total: 0, offset: 0 };
      return undefined;
    };
    const store = useMessages();
    await store.dryRun();
    expect(store.preview?.runId).toBe(preview.runId);
    await store.confirmPurge();
    const real = calls.filter((c) => c.name === 'purge.run' && c.input.dryRun === false);
    expect(real).toHaveLength(1);
    // the service deletes only what it kept for this runId: never "whatever matches now"
    expect(real[0].input).toMatchObject({ dryRun: false, confirm: preview.runId });
    expect(real[0].input).not.toHaveProperty('ids');
    expect(store.error).toBeUndefined();
  });

  it('shows the refusal when the preview has expired, deleting nothing', async () => {
    const preview = dryRun(2, 2);
    answer = (name, input) => {
      if (name === 'purge.run' && input.dryRun === true) return preview;
      if (name === 'purge.run') throw new Error(`confirm: the dry run '${preview.runId}' is not known here or has expired`);
      if (name === 'messages.facets') return { directory: '/m', total: 0, watching: true, types: [], statuses: [], states: [] };
      if (name === 'messages.list') return { items: [], total: 0, offset: 0 };
      return undefined;
    };
    const store = useMessages();
    await store.dryRun();
    await store.confirmPurge();
    expect(store.error).toMatch(/has expired/);
    expect(store.lastPurge).toBeUndefined();
  });
});
