/**
 * What the preload exposes as `window.fonds`, and the IPC channel names behind it. The renderer
 * sees these functions and nothing else: no ipcRenderer, no Node.
 */
import type { CommandName, Pushed } from './api';
import type { ErrorShape } from './errors';

export const IPC_CHANNELS = {
  call: 'fonds:call',
  pushed: 'fonds:pushed',
} as const;

export type CallEnvelope = { ok: true; result: unknown } | { ok: false; error: ErrorShape };

export interface FondsBridge {
  /** Calls a contract command in the main process. Never rejects: errors come back as values. */
  call(name: CommandName, input: unknown): Promise<CallEnvelope>;
  /** Receives events and progress pushed by the service. Returns the unsubscribe function. */
  subscribe(listener: (p: Pushed) => void): () => void;
  /** The absolute path of a dropped File (Electron's webUtils.getPathForFile). */
  pathForFile(file: File): string;
  /** The command names the bridge accepts (the contract's). */
  commands(): string[];
}

/** The exact keys the preload exposes; a test compares them with the real preload. */
export const BRIDGE_KEYS = ['call', 'subscribe', 'pathForFile', 'commands'] as const;
