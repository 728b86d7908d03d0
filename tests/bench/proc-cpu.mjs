/**
 * CPU time from /proc, for the benchmarks (plain JavaScript: the AMQP load generator, a worker
 * thread, does not inherit tsx's loader and imports it too).
 */
import { readFileSync } from 'node:fs';

/**
 * CPU time (user + system, ms) of the process or thread whose `stat` file this is, e.g.
 * `/proc/thread-self/stat` or `/proc/<pid>/stat`; undefined where there is no such file (not Linux).
 */
export function cpuMs(statFile) {
  try {
    const stat = readFileSync(statFile, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, in USER_HZ (100)
  } catch {
    return undefined;
  }
}

/** CPU time (ms) of the calling thread (Linux); undefined elsewhere */
export const threadCpuMs = () => cpuMs('/proc/thread-self/stat');
