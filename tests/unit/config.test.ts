import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeSettings, envNameOf, loadConfig } from '../../src-main/service/config';
import { FondsError } from '../../src-shared/errors';
import { tempDirs } from '../helpers/util';

const dir = tempDirs(afterEach);

describe('configuration', () => {
  it('runs on embedded defaults with no file and no environment', () => {
    const d = dir();
    const c = loadConfig({ env: { FONDS_DATA_DIR: d } });
    expect(c.dataDir).toBe(d);
    expect(c.host).toBe('127.0.0.1');
    expect(c.port).toBe(4870);
    expect(c.requireDeliveredChecksums).toBe(false);
  });

  it('reads config.json in the data directory, and FONDS_* variables win over it', () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ port: 5000, hashWorkers: 3 }));
    const c = loadConfig({ env: { FONDS_DATA_DIR: d, FONDS_PORT: '6000', FONDS_REQUIRE_DELIVERED_CHECKSUMS: 'true' } });
    expect(c.port).toBe(6000);
    expect(c.hashWorkers).toBe(3);
    expect(c.requireDeliveredChecksums).toBe(true);
  });

  it('names the key and the file when a value is wrong', () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ port: 'eighty' }));
    expect(() => loadConfig({ env: { FONDS_DATA_DIR: d } })).toThrowError(/config\.json: setting 'port' \(FONDS_PORT\)/);
  });

  it('names the environment variable when it is wrong', () => {
    const d = dir();
    try {
      loadConfig({ env: { FONDS_DATA_DIR: d, FONDS_HASH_WORKERS: 'many' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(FondsError);
      expect((err as FondsError).code).toBe('CONFIG_INVALID');
      expect((err as FondsError).message).toMatch(/FONDS_HASH_WORKERS/);
    }
  });

  it('refuses a bearer token shorter than 16 characters', () => {
    const d = dir();
    expect(() => loadConfig({ env: { FONDS_DATA_DIR: d, FONDS_TOKEN: 'secret' } })).toThrowError(/FONDS_TOKEN.*at least 16 characters/);
    expect(loadConfig({ env: { FONDS_DATA_DIR: d, FONDS_TOKEN: 'a-token-of-24-characters' } }).token).toBe('a-token-of-24-characters');
  });

  it('refuses an unknown key instead of ignoring a typo', () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify({ prot: 80 }));
    expect(() => loadConfig({ env: { FONDS_DATA_DIR: d } })).toThrowError(/unknown setting 'prot'/);
  });

  it('refuses a config.json that is not JSON', () => {
    const d = dir();
    fs.writeFileSync(path.join(d, 'config.json'), '{ port: 1');
    expect(() => loadConfig({ env: { FONDS_DATA_DIR: d } })).toThrowError(/not valid JSON/);
  });

  it('maps every key to a FONDS_ variable, documented in the README', () => {
    expect(envNameOf('dataDir')).toBe('FONDS_DATA_DIR');
    expect(envNameOf('maxBodyBytes')).toBe('FONDS_MAX_BODY_BYTES');
    const readme = fs.readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
    for (const s of describeSettings()) expect(readme, `README lists ${s.env}`).toContain(s.env);
  });
});
