import type http from 'node:http';
import type { CallContext, Service } from '../service';

/** A REST route shaped like a seed API (Entrepot, NB, Medona), mapped onto contract commands. */
export interface RestRoute {
  method: string;
  pattern: RegExp;
  handle(args: {
    req: http.IncomingMessage;
    res: http.ServerResponse;
    params: Record<string, string>;
    url: URL;
    ctx: CallContext;
  }): Promise<void>;
}

/**
 * Every REST route. Keep them thin: parse the path and body, call one command, shape the answer
 * as the seed does. Capabilities add theirs here as they arrive.
 */
export function restRoutes(_service: Service, _maxBodyBytes: number): RestRoute[] {
  return [];
}
