import { once } from 'node:events';
import fs from 'node:fs';
import type { Writable } from 'node:stream';

/**
 * A streaming POSIX tar writer (ustar, with a pax extended header when a name or a size does not
 * fit ustar): no size limit, no compression, each file read once. Used for the dissemination
 * packages, which are BagIt bags serialized as tar (RFC 8493 §4.2 "serialization").
 */
export class TarWriter {
  bytes = 0;
  constructor(private readonly out: Writable) {}

  private async write(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    if (!this.out.write(chunk)) await once(this.out, 'drain');
  }

  private async pad(size: number): Promise<void> {
    const rest = size % 512;
    if (rest) await this.write(Buffer.alloc(512 - rest));
  }

  private header(name: string, size: number, type: '0' | 'x', mtime: number): Buffer {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, 'utf8');
    h.write('0000644\0', 100, 'ascii');
    h.write('0000000\0', 108, 'ascii');
    h.write('0000000\0', 116, 'ascii');
    h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
    h.write(Math.floor(mtime).toString(8).padStart(11, '0') + '\0', 136, 'ascii');
    h.write('        ', 148, 'ascii');
    h.write(type, 156, 'ascii');
    h.write('ustar\0', 257, 'ascii');
    h.write('00', 263, 'ascii');
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    return h;
  }

  /** A pax record: "<len> <key>=<value>\n", where len counts the whole record. */
  private static record(key: string, value: string): string {
    const body = ` ${key}=${value}\n`;
    let len = Buffer.byteLength(body) + 1;
    while (String(len).length + Buffer.byteLength(body) !== len) len = String(len).length + Buffer.byteLength(body);
    return `${len}${body}`;
  }

  private async entryHeader(name: string, size: number): Promise<void> {
    const mtime = Date.now() / 1000;
    const ascii = /^[\x20-\x7e]*$/.test(name);
    if (!ascii || Buffer.byteLength(name) > 100 || size > 0o77777777777) {
      const pax = Buffer.from(TarWriter.record('path', name) + (size > 0o77777777777 ? TarWriter.record('size', String(size)) : ''), 'utf8');
      await this.write(this.header('PaxHeader', pax.length, 'x', mtime));
      await this.write(pax);
      await this.pad(pax.length);
    }
    const short = ascii ? name.slice(-100) : name.replace(/[^\x20-\x7e]/g, '_').slice(-100);
    await this.write(this.header(short, size > 0o77777777777 ? 0 : size, '0', mtime));
  }

  async addBuffer(name: string, data: Buffer): Promise<void> {
    await this.entryHeader(name, data.length);
    await this.write(data);
    await this.pad(data.length);
  }

  /** Adds a file of `size` bytes; throws when the file does not have exactly that size. */
  async addFile(name: string, file: string, size: number, opts: { signal?: AbortSignal; onBytes?: (n: number) => void } = {}): Promise<void> {
    await this.entryHeader(name, size);
    let seen = 0;
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20, signal: opts.signal }) as AsyncIterable<Buffer>) {
      seen += chunk.length;
      if (seen > size) break;
      await this.write(chunk);
      opts.onBytes?.(chunk.length);
    }
    if (seen !== size) throw new Error(`${name} has ${seen} bytes, ${size} were checked; it changed after its fixity check`);
    await this.pad(size);
  }

  async finish(): Promise<void> {
    await this.write(Buffer.alloc(1024));
  }
}
