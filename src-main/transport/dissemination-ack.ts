import type http from 'node:http';
import { SIGNATURE_HEADER } from '../../src-shared/domain/dissemination';
import { FondsError } from '../../src-shared/errors';
import type { Service } from '../service';
import { sendJson } from './http';

/**
 * Where a webhook recipient acknowledges a dissemination: POST {urn, recipientLabel}, signed with
 * its shared secret (X-Fonds-Signature: sha256=<hex HMAC-SHA256 of the raw body>). The signature
 * is the authentication here, not the bearer token (an external system does not hold it).
 */
export const DISSEMINATION_ACK_PATH = '/v1/dissemination-acks';

/** Reads the raw body (the signature covers its exact bytes) and hands it to the service. */
export async function receiveSignedAck(req: http.IncomingMessage, res: http.ServerResponse, service: Service, maxBodyBytes: number): Promise<void> {
  const limit = Math.min(maxBodyBytes, 65_536);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw new FondsError('PAYLOAD_TOO_LARGE', `The acknowledgement has ${declared} bytes; the limit is ${limit}.`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new FondsError('PAYLOAD_TOO_LARGE', `The acknowledgement is over the limit of ${limit} bytes.`);
    chunks.push(chunk);
  }
  const signature = req.headers[SIGNATURE_HEADER.toLowerCase()];
  if (typeof signature !== 'string' || !signature) throw new FondsError('UNAUTHORIZED', `Missing ${SIGNATURE_HEADER} header (sha256=<hex HMAC-SHA256 of the body with the shared secret>).`);
  const result = await service.call('disseminations.webhookAck', { body: Buffer.concat(chunks).toString('utf8'), signature }, { transport: 'http', clientId: 'webhook' });
  sendJson(res, result.acknowledged ? 200 : 202, result);
}
