/** The static checks run with the suite, so that a layer violation or a type error fails `npm test`. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/util';

const BINS: Record<string, string> = {
  eslint: 'eslint/bin/eslint.js',
  tsc: 'typescript/bin/tsc',
  'vue-tsc': 'vue-tsc/bin/vue-tsc.js',
};
/** Runs a tool's bin file through node (a bin may lack the executable bit after install). */
const run = (cmd: string, args: string[]) =>
  spawnSync(process.execPath, [path.join(repoRoot, 'node_modules', BINS[cmd]), ...args], { cwd: repoRoot, encoding: 'utf8', timeout: 300_000 });

describe('static checks', () => {
  it('passes ESLint, including the layer rules', () => {
    const r = run('eslint', ['.', '--max-warnings', '0']);
    expect(r.stdout + r.stderr, 'eslint output').toBe('');
    expect(r.status).toBe(0);
  }, 300_000);

  it('type-checks the main process, shared code and tests', () => {
    const r = run('tsc', ['--noEmit', '-p', 'tsconfig.json']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 300_000);

  it('type-checks the renderer', () => {
    const r = run('vue-tsc', ['--noEmit', '-p', 'tsconfig.renderer.json']);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 300_000);

  it('the layer rule catches an electron import in the service core', () => {
    const probe = path.join(repoRoot, 'src-main/service/__layer_probe__.ts');
    fs.writeFileSync(probe, "import { app } from 'electron';\nexport const x = app;\n");
    try {
      const r = run('eslint', [probe]);
      expect(r.status).not.toBe(0);
      expect(r.stdout).toContain('never import electron');
    } finally {
      fs.rmSync(probe);
    }
  }, 300_000);

  it('the build produced the main process, the CommonJS preload and the renderer', () => {
    for (const f of ['out/main/index.js', 'out/main/cli.js', 'out/preload/index.cjs', 'out/renderer/index.html']) {
      expect(fs.existsSync(path.join(repoRoot, f)), f).toBe(true);
    }
    const preload = fs.readFileSync(path.join(repoRoot, 'out/preload/index.cjs'), 'utf8');
    expect(preload).toContain('require("electron")');
    expect(preload).not.toMatch(/^import /m);
  });

  it('every file of resources/ the built main process names by a relative path exists (the window icon)', () => {
    const main = path.join(repoRoot, 'out/main/index.js');
    const named = [...fs.readFileSync(main, 'utf8').matchAll(/["'`]((?:\.\.\/)+resources\/[^"'`]+)["'`]/g)].map((m) => m[1]);
    expect(named).toContain('../../resources/icon.png');
    for (const rel of named) expect(fs.existsSync(path.resolve(path.dirname(main), rel)), rel).toBe(true);
  });
});
