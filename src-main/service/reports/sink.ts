import { once } from 'node:events';
import type { Writable } from 'node:stream';

/**
 * Where a report goes (a file, an HTTP response, stdout), written with back-pressure: a writer
 * awaits `drain()` between batches, so a slow reader slows the report instead of filling memory.
 * The sink never ends the stream: its owner does.
 */
export class Sink {
  bytes = 0;
  constructor(private readonly out: Writable) {}

  write(chunk: string | Uint8Array): void {
    if (this.out.destroyed) throw new Error('the report output was closed');
    this.bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    this.out.write(chunk);
  }

  async drain(): Promise<void> {
    if (this.out.writableNeedDrain) await once(this.out, 'drain');
  }
}
