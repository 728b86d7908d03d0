/**
 * The preload (bundled as CommonJS, runs sandboxed). It exposes `window.fonds` with four named
 * functions and nothing else: never ipcRenderer itself.
 */
import { contextBridge, ipcRenderer, webUtils } from 'electron';
import { commandNames, type Pushed } from '../../src-shared/api';
import { IPC_CHANNELS, type CallEnvelope, type FondsBridge } from '../../src-shared/bridge';

const allowed = new Set<string>(commandNames);

const bridge: FondsBridge = {
  call(name, input) {
    if (!allowed.has(name)) {
      return Promise.resolve<CallEnvelope>({ ok: false, error: { code: 'NOT_FOUND', message: `Unknown command '${String(name)}'.` } });
    }
    return ipcRenderer.invoke(IPC_CHANNELS.call, name, input) as Promise<CallEnvelope>;
  },
  subscribe(listener) {
    const handler = (_event: unknown, p: Pushed) => listener(p);
    ipcRenderer.on(IPC_CHANNELS.pushed, handler);
    return () => {
      ipcRenderer.removeListener(IPC_CHANNELS.pushed, handler);
    };
  },
  pathForFile(file) {
    return webUtils.getPathForFile(file);
  },
  commands() {
    return [...commandNames];
  },
};

contextBridge.exposeInMainWorld('fonds', bridge);
