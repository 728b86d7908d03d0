import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The NB capability's secrets, derived from one random key kept in `<dataDir>/nb.key` (mode 0600):
 * the HMAC key of the signed local download links, and the AES-256-GCM key that seals the remote
 * tokens of client orders in SQLite (a copied database does not give them away).
 */
export class NbSecrets {
  private readonly linkKey: Buffer;
  private readonly sealKey: Buffer;

  constructor(dataDir: string) {
    const file = path.join(dataDir, 'nb.key');
    let master: Buffer;
    try {
      master = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
      if (master.length !== 32) throw new Error('bad key');
    } catch {
      master = randomBytes(32);
      fs.writeFileSync(file, master.toString('base64') + '\n', { mode: 0o600 });
    }
    this.linkKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'fonds nb download links', 32));
    this.sealKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'fonds nb remote tokens', 32));
  }

  /** base64url HMAC-SHA256 over the dissemination id and the expiry (unix seconds). */
  signLink(id: string, expires: number): string {
    return createHmac('sha256', this.linkKey).update(`${id}\n${expires}`).digest('base64url');
  }

  linkSignatureValid(id: string, expires: number, signature: string): boolean {
    const expected = Buffer.from(this.signLink(id, expires));
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.sealKey, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1.${iv.toString('base64url')}.${c.getAuthTag().toString('base64url')}.${body.toString('base64url')}`;
  }

  open(sealed: string): string {
    const [v, iv, tag, body] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || body === undefined) throw new Error('not a sealed token');
    const d = createDecipheriv('aes-256-gcm', this.sealKey, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64url')), d.final()]).toString('utf8');
  }
}
