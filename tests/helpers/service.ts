import fs from 'node:fs';
import { createService, type Service } from '../../src-main/service';
import { loadConfig, type Config } from '../../src-main/service/config';
import { tempDir } from './util';

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

