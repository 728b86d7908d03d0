import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FondsError } from '../../src-shared/errors';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One Fonds process per data directory: the SQLite file, the job leases and the staging folders
 * assume it. A lock left by a process that died (kill -9, power cut) is taken over.
 */
export function lockDataDir(dataDir: string): () => void {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, 'fonds.lock');
  const mine = JSON.stringify({ pid: process.pid, host: os.hostname(), since: new Date().toISOString() });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, mine, { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8') === mine) fs.unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder: { pid?: number; host?: string } = {};
      try {
        holder = JSON.parse(fs.readFileSync(file, 'utf8'));
      } catch {
        /* unreadable lock: treat as stale */
      }
      if (holder.pid && holder.host === os.hostname() && holder.pid !== process.pid && alive(holder.pid)) {
        throw new FondsError('CONFLICT', `Another Fonds (process ${holder.pid}) is using the data directory ${dataDir}. Close it, or set FONDS_DATA_DIR to another folder.`);
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new FondsError('CONFLICT', `Could not lock the data directory ${dataDir}.`);
}
