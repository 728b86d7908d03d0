/**
 * The IPC surface as a whole: what the preload exposes, and what the main process accepts.
 * Electron is mocked (the binary is not installed on these machines): nothing here imports it.
 */
import { describe, expect, it, vi } from 'vitest';
import { commandNames } from '../../src-shared/api';
import { BRIDGE_KEYS, IPC_CHANNELS, type FondsBridge } from '../../src-shared/bridge';
import { registerIpc, type IpcEventLike } from '../../src-main/transport/ipc';
import type { Service } from '../../src-main/service';

const exposed: Record<string, unknown> = {};
const invoked: unknown[][] = [];
vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, api: unknown) => (exposed[key] = api) },
  ipcRenderer: {
    invoke: (...args: unknown[]) => {
      invoked.push(args);
      return Promise.resolve({ ok: true, result: null });
    },
    on: vi.fn(),
    removeListener: vi.fn(),
  },
  webUtils: { getPathForFile: () => '/dropped/path' },
}));

describe('the preload bridge', () => {
  it('exposes window.fonds with exactly call, subscribe, pathForFile and commands', async () => {
    await import('../../src-main/preload/index');
    expect(Object.keys(exposed)).toEqual(['fonds']);
    const bridge = exposed.fonds as FondsBridge;
    expect(Object.keys(bridge).sort()).toEqual([...BRIDGE_KEYS].sort());
    expect(bridge.commands()).toEqual(commandNames);
  });

  it('forwards contract commands and refuses others without touching IPC', async () => {
    await import('../../src-main/preload/index');
    const bridge = exposed.fonds as FondsBridge;
    invoked.length = 0;
    await bridge.call('uploads.list', {});
    expect(invoked).toEqual([[IPC_CHANNELS.call, 'uploads.list', {}]]);
    const refused = await bridge.call('shell.exec' as never, {});
    expect(refused).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(invoked).toHaveLength(1);
  });
});

describe('the main-process IPC handler', () => {
  function setup() {
    const handlers = new Map<string, (event: IpcEventLike, ...args: unknown[]) => unknown>();
    const calls: unknown[] = [];
    const service = {
      call: async (name: string, input: unknown) => {
        calls.push([name, input]);
        return { echoed: name };
      },
    } as unknown as Service;
    registerIpc({ handle: (c, l) => handlers.set(c, l), removeHandler: (c) => handlers.delete(c) }, service, (url) => url.startsWith('file:///app/'));
    return { handler: handlers.get(IPC_CHANNELS.call)!, calls, channels: [...handlers.keys()] };
  }

  it('registers one channel only', () => {
    expect(setup().channels).toEqual([IPC_CHANNELS.call]);
  });

  it('answers the app frame with an envelope', async () => {
    const { handler } = setup();
    expect(await handler({ senderFrame: { url: 'file:///app/index.html' } }, 'uploads.list', {})).toEqual({ ok: true, result: { echoed: 'uploads.list' } });
  });

  it('refuses a frame that is not the app, and unknown commands', async () => {
    const { handler, calls } = setup();
    expect(await handler({ senderFrame: { url: 'https://evil.example/' } }, 'uploads.list', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await handler({ senderFrame: null }, 'uploads.list', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await handler({ senderFrame: { url: 'file:///app/index.html' } }, 'fs.delete', {})).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(calls).toEqual([]);
  });
});
