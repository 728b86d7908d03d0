#!/usr/bin/env node
// `npm test`: builds the app (the e2e tests drive the built renderer; the build must pass in CI),
// runs vitest (unit, integration, e2e, static checks) and ends with the totals line
// `N passed, N failed, N skipped`, taken from vitest's JSON reporter.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
// bins are run through node: a package's bin file may lack the executable bit after install
const bin = (rel) => [process.execPath, join(root, 'node_modules', rel)];
const report = join(root, 'test-results', 'vitest.json');
mkdirSync(join(root, 'test-results'), { recursive: true });
rmSync(report, { force: true });

const [node, electronVite] = bin('electron-vite/bin/electron-vite.js');
const build = spawnSync(node, [electronVite, 'build'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error('\nThe build (electron-vite build) failed; no test was run.');
  console.log('0 passed, 1 failed, 0 skipped');
  process.exit(1);
}

const args = ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)];
const [, vitest] = bin('vitest/vitest.mjs');
// the AWS SDK warns on every process that Node 20 support ends in 2027 (known, see README): keep test output readable
const env = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
const run = spawnSync(node, [vitest, ...args], { cwd: root, stdio: 'inherit', env });

let passed = 0;
let failed = 0;
let skipped = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests ?? 0;
  // a test file that failed to load has no failed test in it: count it as one failure
  const brokenFiles = (r.testResults ?? []).filter((f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed')).length;
  failed = (r.numFailedTests ?? 0) + brokenFiles;
  skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
} else {
  failed = 1;
}
if (run.status !== 0 && failed === 0) failed = 1;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
