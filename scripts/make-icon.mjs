#!/usr/bin/env node
// Renders the app's icon (src-renderer/public/favicon.svg, the one source) to resources/icon.png,
// the window icon, 256 × 256, in Debian's Chromium (`apt-get install chromium`). Run it after
// changing the SVG: `node scripts/make-icon.mjs`.
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.join(import.meta.dirname, '..');
const svg = fs.readFileSync(path.join(root, 'src-renderer/public/favicon.svg'), 'utf8');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
});
try {
  const page = await browser.newPage({ viewport: { width: 256, height: 256 } });
  await page.setContent(`<body style="margin:0">${svg.replace('<svg ', '<svg width="256" height="256" ')}</body>`);
  await page.screenshot({ path: path.join(root, 'resources/icon.png'), omitBackground: true });
} finally {
  await browser.close();
}
