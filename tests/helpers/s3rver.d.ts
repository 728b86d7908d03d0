declare module 's3rver' {
  import type { IncomingMessage } from 'node:http';
  interface Options {
    address?: string;
    port?: number;
    silent?: boolean;
    directory?: string;
    configureBuckets?: Array<{ name: string }>;
  }
  /** the part of Koa's context the test middleware uses (s3rver is a Koa application) */
  interface Context {
    method: string;
    path: string;
    query: Record<string, string | string[] | undefined>;
    req: IncomingMessage;
    status: number;
    type: string;
    body: unknown;
    get(header: string): string;
  }
  type Middleware = (ctx: Context, next: () => Promise<void>) => Promise<void>;
  export default class S3rver {
    constructor(options: Options);
    /** Koa's middleware list: composed when the server starts */
    middleware: Middleware[];
    run(): Promise<unknown>;
    close(): Promise<void>;
  }
}
