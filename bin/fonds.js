#!/usr/bin/env node
// The `fonds` command: runs the built CLI (out/main/cli.js, from `npm run build`), or the
// TypeScript sources through tsx in a development checkout that has not been built.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'out', 'main', 'cli.js');
let mod;
if (existsSync(built)) {
  mod = await import(pathToFileURL(built).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(pathToFileURL(join(root, 'src-main', 'cli', 'index.ts')).href);
}
process.exit(await mod.runCli(process.argv.slice(2)));
