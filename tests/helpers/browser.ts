import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterEach, beforeEach } from 'vitest';
import { repoRoot, requireOrSkip, tempDir } from './util';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const artifactsDir = path.join(repoRoot, 'tests', 'artifacts');

/** Debian's Chromium, headless, with the flags this network needs. Never downloads a browser. */
export async function launchChromium(): Promise<Browser | undefined> {
  if (!requireOrSkip(fs.existsSync(CHROMIUM), `Chromium at ${CHROMIUM} (apt-get install chromium)`)) return undefined;
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

export interface ServeProcess {
  url: string;
  token: string;
  dataDir: string;
  child: ChildProcess;
  /** what the server printed so far (its last lines explain a failed test) */
  output(): string;
  stop(): Promise<void>;
}

/** Runs the real `fonds serve` (the built CLI) on a fresh data directory and a free port. */
export async function startServe(env: Record<string, string> = {}): Promise<ServeProcess> {
  const dataDir = tempDir('fonds-e2e-');
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/fonds.js'), 'serve', '--port', '0', '--data-dir', dataDir], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const until = Date.now() + 30_000;
  let m: RegExpExecArray | null = null;
  while (!(m = /Open:\s+(http:\/\/[^/]+)\/#token=(\S+)/.exec(output))) {
    if (child.exitCode !== null || Date.now() > until) {
      // nothing left behind: a serve that did not come up (no built renderer, a port problem) is stopped
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
      const hint = /no built renderer/.test(output) ? '\n(the e2e tests drive the built renderer: `npm run build` first; `npm test` does)' : '';
      throw new Error(`fonds serve did not start:\n${output}${hint}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: m[1],
    token: m[2],
    dataDir,
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface App {
  browser: Browser;
  serve: ServeProcess;
  page: Page;
  /**
   * what went wrong in the page outside the app's own handling: uncaught exceptions, and files of
   * the app (not API calls, whose errors the app shows) that failed to load
   */
  problems: string[];
  /** calls a command on the running server, as a script would */
  api<T>(name: string, input: unknown): Promise<T>;
  close(): Promise<void>;
}

/**
 * Chromium on a fresh `fonds serve` (settings in `env`, FONDS_*), with the page opened on the token link and connected.
 * Undefined when Chromium is missing outside CI (the tests then skip loudly).
 */
export async function openApp(viewport = { width: 1360, height: 860 }, env: Record<string, string> = {}): Promise<App | undefined> {
  const browser = await launchChromium();
  if (!browser) return undefined;
  const serve = await startServe(env);
  fs.mkdirSync(artifactsDir, { recursive: true });
  const page = await browser.newPage({ viewport });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && !new URL(r.url()).pathname.startsWith('/api/')) problems.push(`${r.status()} ${r.url()}`);
  });
  await page.goto(`${serve.url}/#token=${serve.token}`);
  await page.getByText('Connected').waitFor();
  return {
    browser,
    serve,
    page,
    problems,
    async api<T>(name: string, input: unknown): Promise<T> {
      const res = await fetch(`${serve.url}/api/call/${name}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${serve.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
      const body = (await res.json()) as { result: T; error?: { message: string } };
      if (body.error) throw new Error(body.error.message);
      return body.result;
    },
    async close() {
      await browser.close();
      await serve.stop();
    },
  };
}

/** True when the e2e tests must run: Chromium is here, or CI requires it. */
export const e2eEnabled = fs.existsSync(CHROMIUM) || process.env.CI === 'true';

/**
 * When a test of this file fails, prints what a person would have seen (the page's alerts, the
 * server's last lines) and saves a screenshot to tests/artifacts/failed-<test>.png: a CI log then
 * says why a list stayed empty, not only that it did. A test during which a page threw an
 * uncaught error or missed one of the app's files (`App.problems`) fails, naming them.
 */
export function explainFailures(current: () => Array<{ page?: Page; serve?: ServeProcess; problems?: string[] } | undefined>): void {
  afterEach(() => {
    const problems = current().flatMap((app) => app?.problems?.splice(0) ?? []);
    if (problems.length) throw new Error(`the page went wrong outside the app's own handling:\n${problems.join('\n')}`);
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(async ({ task }) => {
      const lines: string[] = [];
      for (const [i, app] of current().entries()) {
        if (!app) continue;
        const { page, serve } = app;
        lines.push(`--- ${task.name}: what page ${i + 1} showed`);
        if (page && !page.isClosed()) {
          const alerts = await page.getByRole('alert').allTextContents().catch((e: Error) => [`(could not read the page: ${e.message})`]);
          lines.push(alerts.length ? alerts.map((a) => `alert: ${a.trim()}`).join('\n') : '(no alert)');
          fs.mkdirSync(artifactsDir, { recursive: true });
          const shot = path.join(artifactsDir, `failed-${task.name.replace(/[^\w-]+/g, '-').slice(0, 80)}-${i + 1}.png`);
          await page.screenshot({ path: shot }).then(() => lines.push(`screenshot: ${shot}`), () => undefined);
        }
        if (serve) lines.push(`--- fonds serve ${i + 1}, last lines`, serve.output().split('\n').slice(-20).join('\n'));
      }
      console.log(lines.join('\n'));
    });
  });
}
