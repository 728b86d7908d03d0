import fs from 'node:fs';
import { createService, type Service } from '../../src-main/service';
import { loadConfig, type Config } from '../../src-main/service/config';
import type { Finding, Upload } from '../../src-shared/api';
import { tempDir, writeTree } from './util';

export * from './util';

/** A service on a new data directory; `dispose` closes it and removes the directory. */
export async function startService(overrides: Partial<Config> = {}): Promise<{ service: Service; dataDir: string; dispose: () => Promise<void> }> {
  const dataDir = overrides.dataDir ?? tempDir('fonds-data-');
  const config = loadConfig({ env: {}, overrides: { hashWorkers: 2, ...overrides, dataDir } });
  const service = await createService(config);
  return {
    service,
    dataDir,
    dispose: async () => {
      await service.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}


/**
 * What an integration test file sets up once, at its top: `cleanups`, run after each test, newest
 * first; `start`, a service on a new data directory, closed and removed with them; `delivery`, a
 * tree written to a new folder, removed with them.
 */
export function testHarness(afterEach: (fn: () => Promise<void>) => void) {
  const cleanups: Array<() => void | Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return {
    cleanups,
    async start(overrides: Partial<Config> = {}) {
      const s = await startService(overrides);
      cleanups.push(s.dispose);
      return s;
    },
    delivery(files: Record<string, string | Buffer>): string {
      const root = tempDir('fonds-delivery-');
      cleanups.push(() => fs.rmSync(root, { recursive: true, force: true }));
      writeTree(root, files);
      return root;
    },
  };
}

/** Ingests `paths` and waits for the checks: the upload as they left it, and its findings. */
export async function ingestChecked(s: Service, paths: string[]): Promise<{ upload: Upload; findings: Finding[] }> {
  const created = await s.call('uploads.ingestPaths', { paths });
  await s.idle();
  const upload = await s.call('uploads.get', { id: created._id });
  const findings = (await s.call('uploads.findings', { id: created._id, limit: 1000 })).items;
  return { upload, findings };
}
