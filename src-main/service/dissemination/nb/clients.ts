import { timingSafeEqual } from 'node:crypto';
import type { Config } from '../../config';

/** A client of the NB dissemination service: who it is, under which contract, where its webhooks go. */
export interface NbClient {
  clientId: string;
  contractId: string;
  webhookUrl: string;
  webhookSecret: string;
}

/** The main token's client: `nbClients.default`, or clientId 'fonds' under contract 'fonds'. */
export function defaultClient(config: Config): NbClient {
  const d = config.nbClients.default;
  return d ? { ...d } : { clientId: 'fonds', contractId: 'fonds', webhookUrl: '', webhookSecret: '' };
}

export function clientById(config: Config, clientId: string): NbClient | undefined {
  const d = defaultClient(config);
  if (d.clientId === clientId) return d;
  for (const [token, c] of Object.entries(config.nbClients)) if (token !== 'default' && c.clientId === clientId) return { ...c };
  return undefined;
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * The client a bearer token stands for: the main token (the one of `<dataDir>/token`) is the
 * default client, each `nbClients` token its own; undefined for any other token. Every entry is
 * compared in constant time.
 */
export function clientForToken(config: Config, mainToken: string, token: string): NbClient | undefined {
  let found: NbClient | undefined;
  if (same(token, mainToken)) found = defaultClient(config);
  for (const [t, c] of Object.entries(config.nbClients)) if (t !== 'default' && same(token, t) && !found) found = { ...c };
  return found;
}

/** How a transport marks a call made for an NB client: the handlers then see only that client's disseminations. */
export const NB_CLIENT_PREFIX = 'nb:';
