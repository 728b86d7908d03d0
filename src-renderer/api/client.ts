/**
 * The renderer's one API client. In Electron it uses `window.fonds` (the preload bridge); in a
 * browser against `fonds serve` it uses HTTP with the bearer token from the page's #token=...
 * Both are typed by the contract in src-shared/api.ts.
 */
import type { CommandInput, CommandName, CommandOutput, Pushed } from '../../src-shared/api';
import type { FondsBridge } from '../../src-shared/bridge';
import type { ErrorShape } from '../../src-shared/errors';

declare global {
  interface Window {
    fonds?: FondsBridge;
  }
}

export class ApiError extends Error {
  readonly code: ErrorShape['code'];
  readonly details?: Record<string, unknown>;
  constructor(shape: ErrorShape) {
    super(shape.message);
    this.code = shape.code;
    this.details = shape.details;
  }
}

const TOKEN_KEY = 'fonds.token';

/** Takes the token from #token=... once, keeps it for the tab, and removes it from the address bar. */
function httpToken(): string {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export const mode: 'ipc' | 'http' = typeof window !== 'undefined' && window.fonds ? 'ipc' : 'http';
const token = mode === 'http' ? httpToken() : '';

async function httpCall(name: string, input: unknown): Promise<unknown> {
  const res = await fetch(`/api/call/${encodeURIComponent(name)}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(input ?? {}),
  });
  const body = (await res.json().catch(() => ({ error: { code: 'INTERNAL', message: `HTTP ${res.status}` } }))) as { result?: unknown; error?: ErrorShape };
  if (body.error) throw new ApiError(body.error);
  return body.result;
}

export async function call<N extends CommandName>(name: N, input: CommandInput<N>): Promise<CommandOutput<N>> {
  if (mode === 'ipc') {
    const envelope = await window.fonds!.call(name, input);
    if (!envelope.ok) throw new ApiError(envelope.error);
    return envelope.result as CommandOutput<N>;
  }
  return (await httpCall(name, input)) as CommandOutput<N>;
}

/** Pushes a file into an OPEN upload (browser mode). */
export async function putFile(uploadId: string, rel: string, file: Blob): Promise<void> {
  const url = `/api/uploads/${encodeURIComponent(uploadId)}/files/${rel.split('/').map(encodeURIComponent).join('/')}`;
  const res = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: file });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: ErrorShape };
    throw new ApiError(body.error ?? { code: 'INTERNAL', message: `HTTP ${res.status} pushing ${rel}` });
  }
}

/** Events and progress from the service: IPC push, or Server-Sent Events read with fetch (so the token stays in a header). */
export function subscribe(listener: (p: Pushed) => void, onState?: (connected: boolean) => void): () => void {
  if (mode === 'ipc') {
    onState?.(true);
    return window.fonds!.subscribe(listener);
  }
  let stopped = false;
  let controller: AbortController | undefined;
  const run = async () => {
    let delay = 500;
    while (!stopped) {
      controller = new AbortController();
      try {
        const res = await fetch('/api/events', { headers: { authorization: `Bearer ${token}` }, signal: controller.signal });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onState?.(true);
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const ev = /^event: (.+)$/m.exec(block)?.[1];
            const data = /^data: (.+)$/m.exec(block)?.[1];
            if (!ev || !data) continue;
            const parsed = JSON.parse(data);
            listener(ev === 'event' ? { channel: 'event', event: parsed } : { channel: 'progress', progress: parsed });
          }
        }
      } catch {
        /* reconnect below */
      }
      if (stopped) return;
      onState?.(false);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  void run();
  return () => {
    stopped = true;
    controller?.abort();
  };
}

export function pathForFile(file: File): string | undefined {
  return mode === 'ipc' ? window.fonds!.pathForFile(file) : undefined;
}

/**
 * Downloads a file the server streams (browser mode; e.g. a report): fetched with the token in a
 * header, then saved by the browser under `fileName`. Errors come back as ApiError.
 */
export async function download(url: string, fileName: string): Promise<number> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) {
    const body = (await res.json().catch(() => ({}))) as { error?: ErrorShape };
    throw new ApiError(body.error ?? { code: 'INTERNAL', message: `HTTP ${res.status} downloading ${fileName}` });
  }
  const blob = await res.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = fileName;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
  return blob.size;
}
