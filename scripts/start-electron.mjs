#!/usr/bin/env node
// `npm start`: launches the built app with the Electron binary, or explains how to get it.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
let electronDir;
try {
  electronDir = dirname(require.resolve('electron/package.json'));
} catch {
  electronDir = undefined;
}
const pathFile = electronDir && join(electronDir, 'path.txt');
const binary = pathFile && existsSync(pathFile) ? join(electronDir, 'dist', readFileSync(pathFile, 'utf8')) : undefined;
if (!binary || !existsSync(binary)) {
  console.error(`The Electron binary is not installed (its download needs github.com, skipped by npm install here).
On a desktop with internet, run once:
  node node_modules/electron/install.js && npx @electron/rebuild -f -w better-sqlite3
Meanwhile the same service runs headless with its UI in your browser:
  npm run serve`);
  process.exit(1);
}
const child = spawn(binary, ['.'], { stdio: 'inherit', env: { ...process.env, ELECTRON_RUN_AS_NODE: undefined } });
child.on('exit', (code) => process.exit(code ?? 0));
