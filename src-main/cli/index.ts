/**
 * `fonds` command line. Exit codes: 0 success (warnings allowed), 1 the input is invalid or a
 * check failed, 2 usage or other error. Problems are printed one per line, naming file and rule.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Upload } from '../../src-shared/api';
import { FondsError, toErrorShape } from '../../src-shared/errors';
import { createService } from '../service';
import { describeSettings, loadConfig, type Config } from '../service/config';
import { HashPool } from '../service/fixity/hash-pool';
import { poolCopyFile, validateBagAt } from '../service/intake';
import { createBag } from '../service/intake/bagit';
import { startHttpServer } from '../transport/http';
import Database from 'better-sqlite3';
import { reportStreamSchema } from '../../src-shared/domain/report';
import { exportReport, writeReport } from '../service/reports';
import { patchInputSchema, type ComposedPatch } from '../../src-shared/domain/product';

const here = path.dirname(fileURLToPath(import.meta.url));

const USAGE = `Usage: fonds <command> [options]

Commands:
  serve                      run the service headless and serve the UI over HTTP
  ingest PATH...             check files, folders or bags as a new upload; print the checks
  validate PATH              validate a BagIt bag (exit 0 valid, 1 invalid, 2 error)
  bag create PATH            create a BagIt 1.0 bag (sha512 + md5) from a folder
  execute UPLOAD_ID...       copy checked uploads into stored data (archive-to-archive), wait,
                             print the outcome (exit 0 SUCCESS, 1 refused or FAILURE, 2 error)
  purge [--dry-run]          purge the message directory with removeMessageTask: one line per
                             message (id, type, status, task, bytes), then totals (exit 0, 2 error)
  report --format F          a dissemination report (csv, json or pdf) from the event log, to
                             --output FILE or stdout (csv, json); reads the database read-only, so
                             it runs beside a running Fonds (exit 0 written, 2 usage or error)
  patch URN --properties JSON
                             a REGARDS patch request (seed 001) to a remote catalogue: queued in
                             the outbox and sent once the broker (amqpUrl) confirms it; --dry-run
                             prints the exact headers and body (exit 0 queued or printed,
                             1 refused: every reason on its own line, 2 usage or error)
  config                     list every setting, its environment variable and default

Options:
  --data-dir DIR             data directory (or FONDS_DATA_DIR)
  --port N, --host H         headless server address (serve)
  --output DIR               where to create the bag (bag create; default PATH-bag)
  --name NAME                upload name (ingest); new stored data name (execute)
  --into STORED_DATA_ID      update this stored data instead of creating one (execute)
  --dry-run                  list what purge would delete, delete nothing (purge)
  --json                     machine-readable output
  --from DATE, --to DATE     report period on the request time, YYYY-MM-DD (UTC), both included
  --recipient L, --urn U     report only these recipients / products (repeat the option)
  --urn-prefix P, --tenant T, --status S (PENDING, WAITING_ACK, DONE, FAILED; repeatable)
  --format csv|json|pdf      report format; --output FILE (required for pdf), --bom (csv),
  --lang en|fr               (pdf)
  --properties JSON          patch: the properties to merge into the product (a JSON object)
  --files-mode APPEND|REPLACE, --priority HIGH|NORMAL|LOW (default NORMAL), --date ISO (delays
  --ack-recipient LABEL      the processing), --tenant T (default: the first of regardsTenants)
  -h, --help                 this help
`;

class UsageError extends Error {}

/** The built renderer next to the built CLI (out/main -> out/renderer), or the repo's out/. */
function rendererDir(): string | undefined {
  for (const d of [path.resolve(here, '../renderer'), path.resolve(here, '../../out/renderer')]) {
    if (fs.existsSync(path.join(d, 'index.html'))) return d;
  }
  return undefined;
}

function configFrom(values: Record<string, string | boolean | string[] | undefined>): Config {
  const overrides: Partial<Config> = {};
  if (typeof values['data-dir'] === 'string') overrides.dataDir = values['data-dir'];
  if (typeof values.port === 'string') {
    const port = Number(values.port);
    if (!Number.isInteger(port)) throw new UsageError(`--port: '${values.port}' is not a port number`);
    overrides.port = port;
  }
  if (typeof values.host === 'string') overrides.host = values.host;
  return loadConfig({ overrides });
}

function out(line: string): void {
  process.stdout.write(line + '\n');
}

async function serve(config: Config): Promise<number> {
  const service = await createService(config);
  const staticDir = rendererDir();
  const server = await startHttpServer({ service, host: config.host, port: config.port, token: service.token, maxBodyBytes: config.maxBodyBytes, staticDir });
  out(`Fonds is serving ${config.dataDir}`);
  out(`  API:   ${server.url}/api  (Authorization: Bearer ${service.token})`);
  if (staticDir) out(`  Open:  ${server.url}/#token=${service.token}`);
  else out('  (no built renderer: run `npm run build` to serve the UI)');
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await service.close();
  return 0;
}

function summarizeUpload(u: Upload): string {
  return `${u.name}: ${u.status}, ${u.files} files, ${u.size} bytes; ` + u.checks.map((c) => `${c.kind} check ${c.status} (${c.errors} errors, ${c.warnings} warnings)`).join('; ');
}

async function ingest(config: Config, paths: string[], name: string | undefined, json: boolean): Promise<number> {
  if (!paths.length) throw new UsageError('ingest needs at least one PATH');
  const service = await createService(config);
  try {
    let upload = await service.call('uploads.ingestPaths', { paths: paths.map((p) => path.resolve(p)), ...(name ? { name } : {}) }, { transport: 'cli' });
    const unsubscribe = service.subscribe((p) => {
      if (!json && p.channel === 'progress' && p.progress.objectId === upload._id && process.stderr.isTTY) {
        const pr = p.progress.progress;
        process.stderr.write(`\r${pr.files}/${pr.totalFiles ?? '?'} files, ${(pr.bytes / 1e6).toFixed(1)} MB ${pr.rate ? `(${(pr.rate / 1e6).toFixed(1)} MB/s)` : ''}   `);
      }
    });
    await service.idle(24 * 3600 * 1000);
    unsubscribe();
    if (process.stderr.isTTY && !json) process.stderr.write('\n');
    upload = await service.call('uploads.get', { id: upload._id });
    const findings = await service.call('uploads.findings', { id: upload._id, limit: 1000 });
    if (json) out(JSON.stringify({ upload, findings: findings.items, findingsTotal: findings.total }, null, 2));
    else {
      out(summarizeUpload(upload));
      for (const f of findings.items) out(problemLine(`${f.severity.toUpperCase()} ${f.check}`, { file: f.path, rule: f.rule, message: f.message }));
      if (findings.total > findings.items.length) out(`... and ${findings.total - findings.items.length} more (see the app or --json)`);
    }
    return upload.status === 'CLOSED' && upload.checks.every((c) => c.status === 'SUCCESS') ? 0 : 1;
  } finally {
    await service.close();
  }
}

/** `LEVEL rule file: message`, without repeating the file when the message starts with it. */
function problemLine(level: string, p: { file: string; rule: string; message: string }): string {
  const file = p.file || '.';
  const message = p.message.startsWith(`${p.file}: `) ? p.message.slice(p.file.length + 2) : p.message;
  return `${level} ${p.rule} ${file}: ${message}`;
}

async function validate(target: string | undefined, json: boolean): Promise<number> {
  if (!target) throw new UsageError('validate needs a PATH');
  const pool = new HashPool();
  try {
    const report = await validateBagAt({ pool }, target);
    if (json) out(JSON.stringify(report, null, 2));
    else {
      for (const e of report.errors) out(problemLine('ERROR', e));
      for (const w of report.warnings) out(problemLine('WARNING', w));
      out(`${report.path}: ${report.valid ? 'valid' : 'INVALID'} BagIt ${report.version ?? '?'} bag, ${report.payloadFiles} payload files, ${report.payloadBytes} bytes, ${report.errors.length} errors, ${report.warnings.length} warnings`);
    }
    return report.valid ? 0 : 1;
  } finally {
    await pool.close();
  }
}

async function bagCreate(source: string | undefined, output: string | undefined, json: boolean): Promise<number> {
  if (!source) throw new UsageError('bag create needs a PATH');
  const src = path.resolve(source);
  const dest = path.resolve(output ?? `${src.replace(/[\\/]+$/, '')}-bag`);
  const pool = new HashPool();
  try {
    const r = await createBag(src, dest, { copyFile: poolCopyFile({ pool }) });
    if (json) out(JSON.stringify({ destination: dest, ...r }));
    else out(`Created ${dest}: ${r.files} files, ${r.bytes} bytes (BagIt 1.0, sha512 + md5)`);
    return 0;
  } finally {
    await pool.close();
  }
}

/**
 * `fonds execute UPLOAD_ID... --name NAME | --into STORED_DATA_ID`: create and launch an
 * archive-to-archive execution, wait for it (a run cut short resumes at the next start), print it.
 */
async function execute(config: Config, uploads: string[], name: string | undefined, into: string | undefined, json: boolean): Promise<number> {
  if (!uploads.length) throw new UsageError('execute needs at least one UPLOAD_ID');
  if (name && into) throw new UsageError('execute takes --name (a new stored data) or --into (an existing one), not both');
  const service = await createService({ ...config, messageWatch: false });
  const ctx = { transport: 'cli' as const };
  try {
    const first = await service.call('uploads.get', { id: uploads[0] }, ctx);
    const created = await service.call(
      'executions.create',
      {
        processing: 'archive-to-archive',
        inputs: { upload: uploads },
        output: { stored_data: into ? { _id: into } : { name: name ?? first.name, storage_tags: ['ARCHIVE'] } },
      },
      ctx,
    );
    await service.call('executions.launch', { id: created._id }, ctx);
    const unsubscribe = service.subscribe((p) => {
      if (!json && p.channel === 'progress' && p.progress.objectId === created._id && process.stderr.isTTY) {
        const pr = p.progress.progress;
        process.stderr.write(`\r${pr.files}/${pr.totalFiles ?? '?'} files, ${(pr.bytes / 1e6).toFixed(1)} MB ${pr.rate ? `(${(pr.rate / 1e6).toFixed(1)} MB/s)` : ''}   `);
      }
    });
    await service.idle(7 * 24 * 3600 * 1000);
    unsubscribe();
    if (process.stderr.isTTY && !json) process.stderr.write('\n');
    const e = await service.call('executions.get', { id: created._id }, ctx);
    const sd = await service.call('storedData.get', { id: e.output.stored_data._id }, ctx);
    const failed = await service.call('executions.files', { id: e._id, status: 'failed', limit: 1000 }, ctx);
    if (json) out(JSON.stringify({ execution: e, storedData: sd, failed: failed.items }, null, 2));
    else {
      out(`execution ${e._id}: ${e.status}, ${e.files.verified}/${e.files.total} files copied and verified, ${e.files.failed} failed${e.reason ? ` (${e.reason})` : ''}`);
      out(`stored data ${sd._id} '${sd.name}': ${sd.status}, ${sd.type_infos.files_number} files, ${sd.size} bytes, ${sd.verified ? 'fixity verified' : 'NOT verified'}, in ${sd.storage.labels.join(', ')}`);
      for (const f of failed.items) out(`FAILED ${f.path}: ${f.error ?? ''}`);
    }
    return e.status === 'SUCCESS' ? 0 : 1;
  } finally {
    await service.close();
  }
}

/** `fonds purge`: reconcile the index with the directory, then purge (or list, with --dry-run). */
async function purge(config: Config, dryRun: boolean, json: boolean): Promise<number> {
  // a one-shot run needs no watcher: the rescan on start brings the index up to date
  const service = await createService({ ...config, messageWatch: false });
  const ctx = { transport: 'cli' as const };
  try {
    await service.idle(24 * 3600 * 1000);
    const rules = await service.call('purge.rules', {}, ctx);
    if (rules.errors.length) {
      for (const e of rules.errors) process.stderr.write(`ERROR removeMessageTask ${e.task || '-'} ${e.field}: ${e.message}\n`);
      process.stderr.write(`fonds: removeMessageTask has ${rules.errors.length} problem(s); nothing was purged.\n`);
      return 2;
    }
    const report = await service.call('purge.run', { dryRun, limit: 1_000_000 }, ctx);
    if (json) {
      out(JSON.stringify(report, null, 2));
      return 0;
    }
    if (!rules.tasks.length) {
      out('No purge task is configured (removeMessageTask is empty): nothing to do.');
      return 0;
    }
    for (const i of report.items) {
      const verb = i.skipped ? 'SKIPPED' : i.deleted ? 'DELETED' : 'WOULD-DELETE';
      out(`${verb} ${i.id} ${i.type} ${i.status} ${i.task} ${i.bytes}${i.skipped ? ` (${i.skipped})` : ''}`);
    }
    for (const t of report.tasks) out(`task ${t.name}: delay ${t.delay}, messages dated before ${t.cutoff}: ${t.messages} messages, ${t.bytes} bytes`);
    const { messages, bytes, skipped } = report.totals;
    out(
      dryRun
        ? `Dry run: ${messages} messages, ${bytes} bytes would be freed; nothing was deleted.`
        : `Purged ${messages} messages, ${bytes} bytes freed${skipped ? `; ${skipped} skipped` : ''}.`,
    );
    return 0;
  } finally {
    await service.close();
  }
}

/**
 * `fonds report`: a dissemination report to --output FILE (atomically) or to stdout. The database
 * is opened read-only without the data-directory lock: a report runs beside a running Fonds.
 */
async function report(
  config: Config,
  values: { from?: string; to?: string; recipient?: string[]; urn?: string[]; 'urn-prefix'?: string; status?: string[]; tenant?: string; format?: string; bom?: boolean; lang?: string; output?: string },
): Promise<number> {
  if (!values.format) throw new UsageError('report needs --format csv|json|pdf');
  const parsed = reportStreamSchema.safeParse({
    filters: {
      ...(values.from ? { from: values.from } : {}),
      ...(values.to ? { to: values.to } : {}),
      recipients: values.recipient ?? [],
      urns: values.urn ?? [],
      ...(values['urn-prefix'] ? { urnPrefix: values['urn-prefix'] } : {}),
      statuses: (values.status ?? []).map((s) => s.toUpperCase()),
      ...(values.tenant ? { tenant: values.tenant } : {}),
    },
    format: values.format,
    bom: values.bom === true,
    ...(values.lang ? { lang: values.lang } : {}),
  });
  if (!parsed.success) {
    const flag: Record<string, string> = { from: '--from', to: '--to', recipients: '--recipient', urns: '--urn', urnPrefix: '--urn-prefix', statuses: '--status', tenant: '--tenant', format: '--format', lang: '--lang' };
    throw new UsageError(parsed.error.issues.map((i) => `${flag[String(i.path[i.path[0] === 'filters' ? 1 : 0])] ?? i.path.join('.')}: ${i.message}`).join('; '));
  }
  if (parsed.data.format === 'pdf' && !values.output) throw new UsageError('--format pdf needs --output FILE (a PDF is not written to a terminal)');
  const file = path.join(config.dataDir, 'fonds.sqlite');
  if (!fs.existsSync(file)) throw new FondsError('NOT_FOUND', `No Fonds database at ${file} (see --data-dir).`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  try {
    if (values.output) {
      const r = await exportReport(db, { ...parsed.data, path: path.resolve(values.output), overwrite: true });
      process.stderr.write(`Wrote ${r.path}: ${r.rows} rows, ${r.bytes} bytes${r.pages ? `, ${r.pages} pages` : ''} (${r.format}).\n`);
    } else {
      const stop = new AbortController();
      process.stdout.once('error', () => stop.abort()); // a closed pipe (| head) ends the report quietly
      try {
        await writeReport(db, parsed.data, process.stdout, { signal: stop.signal });
      } catch (err) {
        if (!stop.signal.aborted) throw err;
      }
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    }
    return 0;
  } finally {
    db.close();
  }
}

/** The patch request as the seed prints it: `# Headers`, one `name=value` a line, then the body. */
function printComposed(c: ComposedPatch): void {
  out(`exchange: ${c.exchange} (virtual host ${c.vhost}, routing key '${c.routingKey}')`);
  out(`properties: ${Object.entries(c.properties).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  out('# Headers');
  for (const [k, v] of Object.entries(c.headers)) out(`${k}=${v}`);
  out(c.body);
}

/**
 * `fonds patch URN --properties JSON ...`: compose a patch request to a remote REGARDS (Fonds as a
 * client); --dry-run prints it, otherwise it is queued in the outbox and, with a broker, waited for
 * (up to 15 s) until the broker confirms it.
 */
async function patch(
  config: Config,
  args: string[],
  values: { properties?: string; 'files-mode'?: string; priority?: string; date?: string; 'ack-recipient'?: string; tenant?: string; 'dry-run'?: boolean; json?: boolean },
): Promise<number> {
  if (args.length !== 1) throw new UsageError(args.length ? `patch takes one URN, not ${args.length} arguments` : 'patch needs a URN');
  const reasons: string[] = [];
  let properties: unknown;
  if (values.properties !== undefined) {
    try {
      properties = JSON.parse(values.properties);
    } catch (err) {
      reasons.push(`properties (--properties): not JSON (${(err as Error).message})`);
    }
  }
  const input = {
    tenant: values.tenant ?? config.regardsTenants[0],
    urn: args[0],
    ...(properties !== undefined ? { properties } : {}),
    ...(values['files-mode'] !== undefined ? { fileUpdateMode: values['files-mode'].toUpperCase() } : {}),
    ...(values.priority !== undefined ? { priority: values.priority.toUpperCase() } : {}),
    ...(values.date !== undefined ? { requestDate: values.date } : {}),
    ...(values['ack-recipient'] !== undefined ? { acknowledgedRecipient: values['ack-recipient'] } : {}),
  };
  const option: Record<string, string> = { tenant: '--tenant', urn: 'URN', properties: '--properties', fileUpdateMode: '--files-mode', priority: '--priority', requestDate: '--date', acknowledgedRecipient: '--ack-recipient' };
  const parsed = patchInputSchema.safeParse(input);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      const field = i.path.map(String).join('.') || '(request)';
      const flag = option[String(i.path[0])];
      reasons.push(`${field}${flag ? ` (${flag})` : ''}: ${i.message}`);
    }
  }
  const refuse = (lines: string[]) => {
    for (const r of lines) out(`ERROR ${r}`);
    process.stderr.write(`fonds: the patch request would be refused (${lines.length} reason${lines.length > 1 ? 's' : ''}); nothing was queued.\n`);
    return 1;
  };
  if (reasons.length || !parsed.success) return refuse(reasons);
  const service = await createService({ ...config, messageWatch: false });
  const ctx = { transport: 'cli' as const };
  try {
    if (values['dry-run']) {
      const c = await service.call('patches.compose', parsed.data, ctx);
      if (values.json) out(JSON.stringify(c, null, 2));
      else printComposed(c);
      return c.problems.length ? refuse(c.problems) : 0;
    }
    let p;
    try {
      p = await service.call('patches.send', parsed.data, ctx);
    } catch (err) {
      if (err instanceof FondsError && err.code === 'INVALID_INPUT') {
        const issues = (err.details as { issues?: Array<{ message: string }> } | undefined)?.issues;
        return refuse(issues?.length ? issues.map((i) => i.message) : [err.message]);
      }
      throw err;
    }
    // with a broker: wait (bounded) for its confirm; without one, the request waits in the outbox
    const until = Date.now() + 15_000;
    let status = await service.call('amqp.status', {}, ctx);
    while (status.state !== 'not-configured' && p.state === 'QUEUED' && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      p = (await service.call('patches.list', { direction: 'sent', q: p.requestId, limit: 10 }, ctx)).items.find((x) => x.requestId === p!.requestId) ?? p;
      status = await service.call('amqp.status', {}, ctx);
    }
    const sent = p.state !== 'QUEUED';
    if (values.json) out(JSON.stringify({ patch: p, sent, broker: { state: status.state, url: status.url, vhost: status.vhost, ...(status.lastError ? { lastError: status.lastError } : {}) } }, null, 2));
    else {
      out(`patch request ${p.requestId} for ${p.urn}: ${p.state}`);
      if (sent) out(`sent: the broker at ${status.url} (virtual host ${status.vhost}) confirmed it; the answers come on FeatureRequestEvent`);
      else {
        const why = status.state === 'not-configured' ? 'no broker is configured (amqpUrl)' : `the broker is not reachable (${status.lastError ?? status.state})`;
        out(`waiting in the outbox (message ${p.outboxId}): ${why}; it goes out when Fonds runs connected to the broker (review it with the outbox)`);
      }
    }
    return 0;
  } finally {
    await service.close();
  }
}

export async function runCli(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'data-dir': { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        output: { type: 'string' },
        name: { type: 'string' },
        into: { type: 'string' },
        json: { type: 'boolean', default: false },
        'dry-run': { type: 'boolean', default: false },
        from: { type: 'string' },
        to: { type: 'string' },
        recipient: { type: 'string', multiple: true },
        urn: { type: 'string', multiple: true },
        'urn-prefix': { type: 'string' },
        status: { type: 'string', multiple: true },
        tenant: { type: 'string' },
        format: { type: 'string' },
        bom: { type: 'boolean', default: false },
        lang: { type: 'string' },
        properties: { type: 'string' },
        'files-mode': { type: 'string' },
        priority: { type: 'string' },
        date: { type: 'string' },
        'ack-recipient': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    process.stdout.write(USAGE);
    return cmd || values.help ? 0 : 2;
  }
  try {
    switch (cmd) {
      case 'serve':
        return await serve(configFrom(values));
      case 'ingest':
        return await ingest(configFrom(values), rest, values.name, values.json);
      case 'validate':
        return await validate(rest[0], values.json);
      case 'bag':
        if (rest[0] !== 'create') throw new UsageError(`unknown bag command '${rest[0] ?? ''}' (try: bag create PATH)`);
        return await bagCreate(rest[1], values.output, values.json);
      case 'execute':
        return await execute(configFrom(values), rest, values.name, values.into, values.json);
      case 'purge':
        return await purge(configFrom(values), values['dry-run'], values.json);
      case 'report':
        return await report(configFrom(values), values);
      case 'patch':
        return await patch(configFrom(values), rest, values);
      case 'config':
        for (const s of describeSettings()) out(`${s.key.padEnd(28)} ${s.env.padEnd(34)} ${JSON.stringify(s.default)}`);
        return 0;
      default:
        throw new UsageError(`unknown command '${cmd}'`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`fonds: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    const shape = toErrorShape(err);
    process.stderr.write(`fonds: ${shape.code}: ${shape.message}\n`);
    return err instanceof FondsError && err.code === 'CHECK_FAILED' ? 1 : 2;
  }
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  runCli(process.argv.slice(2)).then((code) => process.exit(code));
}
