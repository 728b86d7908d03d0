/**
 * The Electron shell: hosts the service in the main process, shows the renderer in one secure
 * window, bridges IPC. All domain work lives in ../service, which never imports electron.
 */
import { app, BrowserWindow, dialog, ipcMain } from 'electron';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createService, type Service } from '../service';
import { loadConfig } from '../service/config';
import { forwardPushed, registerIpc } from '../transport/ipc';
import { createMainWindow, hardenSession } from './window';

const here = path.dirname(fileURLToPath(import.meta.url));
const rendererFile = path.join(here, '../renderer/index.html');
/**
 * electron-vite's dev server (`electron-vite dev` sets this). Honoured only in an unpackaged app and
 * on a loopback address: the origin it names is trusted with every command over IPC, and a packaged
 * app shows nothing but its own files.
 */
const devUrl = devServerUrl(process.env.ELECTRON_RENDERER_URL);
const appOrigin = devUrl ? new URL(devUrl).origin : undefined;

function devServerUrl(value: string | undefined): string | undefined {
  if (!value || app.isPackaged) return undefined;
  const url = URL.parse(value);
  return url?.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname) ? url.href : undefined;
}
const rendererFileUrl = pathToFileURL(rendererFile).href;

function isAppUrl(url: string): boolean {
  if (appOrigin) return url.startsWith(appOrigin + '/');
  return url === rendererFileUrl || url.startsWith(rendererFileUrl + '#') || url.startsWith(rendererFileUrl + '?');
}

let service: Service | undefined;

async function main(): Promise<void> {
  if (!app.requestSingleInstanceLock()) {
    app.quit();
    return;
  }
  await app.whenReady();
  hardenSession();
  try {
    service = await createService(loadConfig());
  } catch (err) {
    dialog.showErrorBox('Fonds cannot start', err instanceof Error ? err.message : String(err));
    app.exit(1);
    return;
  }
  registerIpc(ipcMain, service, isAppUrl);
  const win = createMainWindow({ preload: path.join(here, '../preload/index.cjs'), rendererUrl: devUrl, rendererFile, isAppUrl });
  forwardPushed(service, (channel, p) => {
    for (const w of BrowserWindow.getAllWindows()) if (!w.isDestroyed()) w.webContents.send(channel, p);
  });
  app.on('second-instance', () => {
    if (win.isMinimized()) win.restore();
    win.focus();
  });
}

app.on('window-all-closed', () => app.quit());
app.on('will-quit', (event) => {
  if (!service) return;
  event.preventDefault();
  const s = service;
  service = undefined;
  void s.close().finally(() => app.quit());
});

void main();
