import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
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
    if (child.exitCode !== null || Date.now() > until) throw new Error(`fonds serve did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: m[1],
    token: m[2],
    dataDir,
    child,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
