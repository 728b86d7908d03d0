import { commandNames, isCommandName, type Pushed } from '../../src-shared/api';
import { IPC_CHANNELS, type CallEnvelope } from '../../src-shared/bridge';
import { FondsError, toErrorShape } from '../../src-shared/errors';
import type { Service } from '../service';

/** The part of Electron's ipcMain this transport uses (injected, so tests need no Electron). */
export interface IpcMainLike {
  handle(channel: string, listener: (event: IpcEventLike, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}
export interface IpcEventLike {
  senderFrame: { url: string } | null;
}

/**
 * Serves contract commands over IPC. Each call is checked: the sending frame must be the app's own
 * page (no remote content, no injected frame), the name must be in the contract, and the input is
 * parsed with its schema by the service. Answers are envelopes so error codes survive IPC.
 */
export function registerIpc(ipcMain: IpcMainLike, service: Service, isTrustedUrl: (url: string) => boolean): () => void {
  ipcMain.handle(IPC_CHANNELS.call, async (event, name, input): Promise<CallEnvelope> => {
    try {
      const url = event.senderFrame?.url ?? '';
      if (!isTrustedUrl(url)) throw new FondsError('FORBIDDEN', `IPC from an untrusted frame (${url || 'unknown'}) refused.`);
      if (!isCommandName(name)) throw new FondsError('NOT_FOUND', `Unknown command '${String(name)}'.`);
      return { ok: true, result: await service.call(name, input, { transport: 'ipc' }) };
    } catch (err) {
      return { ok: false, error: toErrorShape(err) };
    }
  });
  return () => ipcMain.removeHandler(IPC_CHANNELS.call);
}

/** Forwards pushed events to the renderer(s). */
export function forwardPushed(service: Service, send: (channel: string, p: Pushed) => void): () => void {
  return service.subscribe((p) => send(IPC_CHANNELS.pushed, p));
}

export const ipcCommandNames = commandNames;
