import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { FondsError } from '../../src-shared/errors';

/**
 * Every setting, with its default. Keys are flat so that each maps to one environment variable:
 * `hashWorkers` <- FONDS_HASH_WORKERS. Precedence: defaults < <dataDir>/config.json < environment
 * < explicit overrides (tests, CLI flags). The README lists them all; keep it in step.
 */
export const configSchema = z.object({
  /** Where Fonds keeps its database, token, storage and messages. */
  dataDir: z.string().min(1),
  /** Headless server bind address; keep loopback unless behind a proxy. */
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(4870),
  /** Bearer token for the headless server; empty = generate once and keep in <dataDir>/token. At least 16 characters, as NB clients' tokens. */
  token: z
    .string()
    .refine((t) => t === '' || t.trim().length >= 16, 'at least 16 characters (or empty: one is generated and kept in <dataDir>/token)')
    .default(''),
  /** Largest JSON body the headless server accepts. */
  maxBodyBytes: z.number().int().min(1024).default(1024 * 1024),
  /** Largest single file pushed over HTTP into an upload. */
  maxUploadFileBytes: z.number().int().min(1).default(64 * 1024 ** 3),
  /** Worker threads that hash files. */
  hashWorkers: z.number().int().min(1).max(64).default(Math.max(1, Math.min(4, os.availableParallelism()))),
  /** Durable jobs run at once. */
  jobConcurrency: z.number().int().min(1).max(64).default(2),
  /** Standard check fails when a delivered file has no MD5 signature (Entrepot's strict rule). */
  requireDeliveredChecksums: z.boolean().default(false),
  /** UI language at first start: en or fr. */
  locale: z.enum(['en', 'fr']).default('en'),

  // ---- storage (stored data) ----
  /** Where stored data goes: a local folder, or an S3 bucket. */
  storage: z.enum(['local', 's3']).default('local'),
  /** The local storage folder; empty = <dataDir>/storage. */
  storageDir: z.string().default(''),
  /** Local copies made durable: 'batch' (one sync per batch, before they count as verified), 'file' (fsync each), 'none'. */
  storageDurability: z.enum(['batch', 'file', 'none']).default('batch'),
  /** How often an execution makes its proven copies durable and commits them as verified; a kill redoes at most this much copying. */
  storageCommitMs: z.number().int().min(10).max(60_000).default(1000),
  s3Endpoint: z.string().default(''),
  s3Region: z.string().default('us-east-1'),
  s3Bucket: z.string().default(''),
  s3Prefix: z.string().default('fonds'),
  s3AccessKeyId: z.string().default(''),
  s3SecretAccessKey: z.string().default(''),
  /** Path-style URLs (http://host/bucket/key), needed by most S3-compatible servers. */
  s3ForcePathStyle: z.boolean().default(true),
  /** Multipart part size in MiB (5 minimum). */
  s3PartSizeMb: z.number().int().min(5).max(5120).default(16),
  /** Parts uploaded in parallel. */
  s3QueueSize: z.number().int().min(1).max(64).default(4),
  /** Verify by reading every object back, not only size and checksums. */
  s3VerifyReread: z.boolean().default(false),
  /** Delete an upload's staged files automatically once an execution from it succeeded with fixity verified. */
  deleteUploadAfterVerifiedExecution: z.boolean().default(false),

  // ---- messages (Medona message directory, seed 003) ----
  /** The shared message directory (Maarch RM's messageDirectory); empty = <dataDir>/messages. */
  messageDirectory: z.string().default(''),
  /** Purge rules, in the seed's syntax ({'<task>': {'type': [...], 'status': [...], 'delay': 'P7D'}}) or JSON; empty = no task. */
  removeMessageTask: z.string().default(''),
  /** Run the purge every so often: an ISO 8601 duration (PT6H, P1D); empty = never on its own. */
  purgeSchedule: z
    .string()
    .default('')
    .refine((s) => s === '' || /^P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$/.test(s), 'not an ISO 8601 duration such as PT6H or P1D'),
  /** How long the message directory lock lives without being renewed (a crashed holder's lock is taken over after this). */
  messageLockTtlMs: z.number().int().min(1000).max(3_600_000).default(60_000),
  /** Watch the message directory for changes (off: only the rescans on start and on demand). */
  messageWatch: z.boolean().default(true),

  // ---- products: REGARDS patch requests over AMQP (seed 001) ----
  /** The RabbitMQ broker, amqp://user:password@host:port; empty = none (patch requests wait in the outbox). */
  amqpUrl: z
    .string()
    .default('')
    .refine((s) => s === '' || /^amqps?:\/\/[^\s]+$/.test(s), 'not an amqp:// or amqps:// URL'),
  /** The virtual host (REGARDS' is regards.multitenant.manager); a path in amqpUrl is not used. */
  amqpVhost: z.string().min(1).max(255).default('regards.multitenant.manager'),
  /** Unacknowledged patch requests the broker hands over at once; a window of them is committed together. */
  amqpPrefetch: z.number().int().min(1).max(10_000).default(1000),
  /** Larger messages are refused (DENIED when they carry a request id, else dead-lettered). */
  amqpMaxMessageBytes: z.number().int().min(1024).max(512 * 1024 * 1024).default(4 * 1024 * 1024),
  /** AMQP heartbeat: a silent network cut is noticed after about twice this. */
  amqpHeartbeatSeconds: z.number().int().min(0).max(600).default(30),
  /** Longest wait between two attempts to reach the broker (the backoff doubles up to it). */
  amqpReconnectMaxMs: z.number().int().min(100).max(600_000).default(30_000),
  /**
   * x-max-priority of the patch-request queue: the AMQP `priority` levels it sorts by (0 to this).
   * 2 = REGARDS' three (LOW 0, NORMAL 1, HIGH 2); higher priorities count as the highest. Each
   * level costs the broker work on every message while requests queue up: few is RabbitMQ's advice.
   */
  amqpMaxPriority: z.number().int().min(1).max(255).default(2),
  /** Fonds' queues are <prefix>.feature-update-requests, <prefix>.feature-request-events, <prefix>.dead-letter. */
  amqpQueuePrefix: z.string().min(1).max(100).regex(/^[\w.-]+$/, 'letters, digits, . _ - only').default('fonds'),
  /** The REGARDS tenants (projects) this catalogue knows; a patch request for another is DENIED. */
  regardsTenants: z.array(z.string().min(1).max(128)).min(1).default(['project1']),
  /** regards.request.owner of the patch requests Fonds sends. */
  regardsRequestOwner: z.string().min(1).max(128).default('fonds'),
  /** Consume patch requests as a catalogue; turn off when a real REGARDS consumes them on the same virtual host. */
  regardsCatalogue: z.boolean().default(true),

  // ---- nb: the NB dissemination service, served and ordered from (seed 004) ----
  /**
   * Who may order disseminations: token -> {clientId, contractId, webhookUrl, webhookSecret}. The key
   * 'default' describes the main token's client (clientId 'fonds' when absent); other keys are tokens (≥ 16 characters).
   */
  nbClients: z
    .record(
      z.string().refine((k) => k === 'default' || k.length >= 16, "a token of at least 16 characters, or 'default' (the main token)"),
      z
        .object({
          clientId: z.string().min(1).max(128),
          contractId: z.string().max(128).default(''),
          webhookUrl: z.string().regex(/^https?:\/\/\S+$/, 'not an http(s) URL').or(z.literal('')).default(''),
          webhookSecret: z.string().max(500).default(''),
        })
        .strict()
        .refine((c) => !c.webhookUrl || c.webhookSecret.length >= 16, 'webhookUrl needs a webhookSecret of at least 16 characters'),
    )
    .default({}),
  /** Life of a download link (presigned S3 URL or signed local link); reused until it expires. S3 allows 7 days at most. */
  nbLinkTtlSeconds: z.number().int().min(60).max(604_800).default(86_400),
  /** Where packages wait for download in folder mode; empty = <dataDir>/nb/deliveries. */
  nbDeliveryDir: z.string().default(''),
  /** The delivery bucket; empty = folder mode (signed links served by the headless server). Connection: the s3* settings. */
  nbS3Bucket: z.string().default(''),
  nbS3Prefix: z.string().default('disseminations'),
  /** Base of the local download links (a proxy's address); empty = the address the client used to reach the server. */
  nbPublicUrl: z
    .string()
    .default('')
    .refine((s) => s === '' || /^https?:\/\/[^\s/]+(\/\S*)?$/.test(s), 'not an http(s) URL'),
  /** Client orders: first delay between two polls of a remote dissemination (doubles, with jitter). */
  nbPollInitialMs: z.number().int().min(10).max(3_600_000).default(2000),
  /** Client orders: longest delay between two polls. */
  nbPollMaxMs: z.number().int().min(10).max(86_400_000).default(300_000),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigKey = keyof Config;

/** FONDS_<KEY> for a camelCase key: hashWorkers -> FONDS_HASH_WORKERS. */
export function envNameOf(key: string): string {
  return 'FONDS_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** The OS application-data folder: XDG on Linux, Application Support on macOS, APPDATA on Windows. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (process.platform === 'win32') return path.join(env.APPDATA ?? path.join(os.homedir(), 'AppData', 'Roaming'), 'Fonds');
  if (process.platform === 'darwin') return path.join(os.homedir(), 'Library', 'Application Support', 'Fonds');
  return path.join(env.XDG_DATA_HOME ?? path.join(os.homedir(), '.local', 'share'), 'fonds');
}

function shapeOf(key: string): z.ZodType | undefined {
  return (configSchema.shape as Record<string, z.ZodType>)[key];
}

function baseType(schema: z.ZodType): string {
  let s: z.ZodType = schema;
  // unwrap defaults / optionals
  for (;;) {
    const def = (s as unknown as { def: { type: string; innerType?: z.ZodType } }).def;
    if ((def.type === 'default' || def.type === 'optional') && def.innerType) s = def.innerType;
    else return def.type;
  }
}

/** Converts an environment string to the key's type; an unconvertible value is left for zod to name. */
function fromEnv(key: string, raw: string): unknown {
  const schema = shapeOf(key);
  if (!schema) return raw;
  switch (baseType(schema)) {
    case 'number':
      return raw.trim() === '' || Number.isNaN(Number(raw)) ? raw : Number(raw);
    case 'boolean':
      if (/^(1|true|yes|on)$/i.test(raw)) return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      return raw;
    case 'array':
      if (raw.trim().startsWith('[')) {
        try {
          return JSON.parse(raw);
        } catch {
          return raw;
        }
      }
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    case 'record':
    case 'object':
      try {
        return JSON.parse(raw);
      } catch {
        return raw;
      }
    default:
      return raw;
  }
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** win over everything (tests, CLI flags) */
  overrides?: Partial<Config>;
}

/** Validates a raw object, naming the key and the source in every error. */
export function parseConfig(raw: Record<string, unknown>, source: string): Config {
  const unknownKeys = Object.keys(raw).filter((k) => !shapeOf(k));
  if (unknownKeys.length) {
    throw new FondsError('CONFIG_INVALID', `${source}: unknown setting '${unknownKeys[0]}' (known: ${Object.keys(configSchema.shape).join(', ')}).`, {
      key: unknownKeys[0],
    });
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = issue.path.join('.');
    throw new FondsError('CONFIG_INVALID', `${source}: setting '${key}' (${envNameOf(String(issue.path[0] ?? key))}): ${issue.message}.`, {
      key,
      issues: result.error.issues.map((i) => ({ key: i.path.join('.'), message: i.message })),
    });
  }
  return result.data;
}

/**
 * Loads the configuration: defaults, then <dataDir>/config.json, then FONDS_* variables, then
 * overrides. The data directory itself comes from overrides, FONDS_DATA_DIR or the OS default.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const dataDir = path.resolve(options.overrides?.dataDir ?? env.FONDS_DATA_DIR ?? defaultDataDir(env));
  const file = path.join(dataDir, 'config.json');
  let fromFile: Record<string, unknown> = {};
  if (fs.existsSync(file)) {
    try {
      const parsed: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('the top level must be an object');
      fromFile = parsed as Record<string, unknown>;
    } catch (err) {
      throw new FondsError('CONFIG_INVALID', `${file}: not valid JSON: ${(err as Error).message}`, { file });
    }
    parseConfig({ ...fromFile, dataDir }, file); // name the file when the file is wrong
  }
  const fromEnvironment: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const raw = env[envNameOf(key)];
    if (raw !== undefined && key !== 'dataDir') fromEnvironment[key] = fromEnv(key, raw);
  }
  const merged = { ...fromFile, ...fromEnvironment, ...options.overrides, dataDir };
  const source = Object.keys(fromEnvironment).length ? `environment (${Object.keys(fromEnvironment).map(envNameOf).join(', ')}) or ${file}` : file;
  return parseConfig(merged, source);
}

/** The settings with their defaults and environment names, for `fonds config` and the README. */
export function describeSettings(): Array<{ key: string; env: string; default: unknown }> {
  return Object.entries(configSchema.shape).map(([key, schema]) => {
    const r = (schema as z.ZodType).safeParse(undefined);
    return { key, env: envNameOf(key), default: r.success ? r.data : key === 'dataDir' ? defaultDataDir() : undefined };
  });
}
