/**
 * Large XML messages parsed and pretty-printed on worker threads. fast-xml-parser takes about
 * 175 ms per MiB to parse on the main thread (a 30 MiB transfer manifest blocked the event loop,
 * and so every window and transport, for 5 s), and pretty-printing (validate, parse, build) about
 * 100 ms per MiB. Here the main thread only reads the file and refuses DOCTYPEs (one indexOf pass);
 * the rest runs on a worker.
 *
 * Two workers run the same source: one parses for the index (a rescan may queue many large
 * messages there), one pretty-prints for `messages.get`, so that a person opening a message does
 * not wait behind a rescan, and so that a late pretty-print can end its worker without losing
 * parses. If the parsing worker cannot run (it failed to start, or died), messages are parsed here
 * as before: slower, never wrong. If the pretty-printing worker fails or is late, the text is
 * shown as written, as for XML that is not well-formed, and the next message starts a new worker.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import {
  declarationOffset,
  fromXmlDocument,
  notWellFormed,
  parseXmlMessage,
  prettyPrint,
  PRETTY_BUILDER_OPTIONS,
  PRETTY_PARSER_OPTIONS,
  XML_PARSER_OPTIONS,
  xmlRefusal,
  type ParsedMessage,
  type Tree,
} from './parse';

/** XML message files at least this large are parsed off the main thread. */
export const PARSE_OFF_THREAD_BYTES = 1024 * 1024;
/**
 * XML shown by `messages.get` is pretty-printed off the main thread from this size: below it,
 * pretty-printing inline holds the event loop about 15 ms at most (measured, see README.md).
 */
export const PRETTY_OFF_THREAD_BYTES = 128 * 1024;
/** A pretty-print not answered in this time ends its worker; the text is shown as written. */
export const PRETTY_TIMEOUT_MS = 5_000;

/*
 * Plain CommonJS evaluated from this string (as the hash pool's and the checkpointer's workers),
 * so it runs the same under vitest, tsx and the bundled app; fast-xml-parser is required by the
 * path the main thread resolved. `prune` keeps what `fromXmlDocument` reads: the first of each
 * repeated element, objects three levels down, and text cut at the 1000 characters `text()` keeps
 * (uncut when trailing spaces would make the cut read shorter: values arrive trimmed already).
 * `pretty` is `prettyPrint` for XML after its DOCTYPE check (done on the main thread), with the
 * same options: keep the two alike. Text that is not well-formed is not sent back (`asWritten`):
 * the main thread has it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { XMLBuilder, XMLParser, XMLValidator } = require(workerData.module);
const parser = new XMLParser(workerData.options);
const prettyParser = new XMLParser(workerData.prettyParser);
const prettyBuilder = new XMLBuilder(workerData.prettyBuilder);
function prune(v, depth) {
  if (Array.isArray(v)) v = v[0];
  if (typeof v === 'string') {
    if (v.length <= 1000) return v;
    const cut = v.slice(0, 1000);
    return cut.trimEnd().length === 1000 ? cut : v;
  }
  if (typeof v !== 'object' || v === null) return v;
  const out = {};
  let n = 0;
  for (const k in v) {
    const c = v[k];
    if (typeof c === 'object' && c !== null && depth <= 0) continue;
    if (++n > 500) break;
    out[k] = prune(c, depth - 1);
  }
  return out;
}
function parse(id, xml) {
  try {
    const valid = XMLValidator.validate(xml);
    if (valid !== true) { parentPort.postMessage({ id, invalid: { msg: valid.err.msg, line: valid.err.line, col: valid.err.col } }); return; }
    const doc = parser.parse(xml);
    const out = {};
    for (const k in doc) out[k] = Array.isArray(doc[k]) ? doc[k].slice(0, 2).map((r) => prune(r, 3)) : prune(doc[k], 3);
    parentPort.postMessage({ id, doc: out });
  } catch (e) {
    parentPort.postMessage({ id, error: String((e && e.message) || e) });
  }
}
function pretty(id, xml) {
  let text;
  try {
    if (XMLValidator.validate(xml) === true) text = String(prettyBuilder.build(prettyParser.parse(xml))).trim();
  } catch {
    text = undefined;
  }
  parentPort.postMessage(text === undefined ? { id, asWritten: true } : { id, pretty: text });
}
parentPort.on('message', ({ id, op, xml }) => (op === 'pretty' ? pretty(id, xml) : parse(id, xml)));
`;

type Reply = { id: number; doc?: Tree; invalid?: { msg: string; line: number; col: number }; error?: string; pretty?: string; asWritten?: true };

interface Job {
  /** the worker's answer */
  answer(reply: Reply): void;
  /** the worker is gone before answering (it failed, died, or was ended for being late), and why */
  lost(why: string): void;
}

interface XmlWorkerOptions {
  /** after a failure, the next job starts a new worker; else every later job is lost at once */
  restart: boolean;
  /** a job not answered in this time ends the worker, and its jobs are lost */
  timeoutMs?: number;
  /** the fast-xml-parser module the worker requires: by default the one this thread resolves */
  module?: string;
}

/** One worker thread running WORKER_SOURCE, started on first use; it keeps the process alive only while it has work. */
class XmlWorker {
  private worker: Worker | undefined;
  private brokenBecause: string | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, Job & { timer?: NodeJS.Timeout }>();
  /** jobs the worker answered */
  answered = 0;

  constructor(private readonly options: XmlWorkerOptions) {}

  send(op: 'parse' | 'pretty', xml: string, job: Job): void {
    const w = this.start();
    if (!w) {
      job.lost(this.brokenBecause ?? 'the worker thread could not start');
      return;
    }
    const id = this.nextId++;
    const { timeoutMs } = this.options;
    const timer =
      timeoutMs === undefined ? undefined : setTimeout(() => this.retire(w, `the worker thread did not answer within ${timeoutMs} ms and was stopped`, true), timeoutMs).unref();
    this.waiting.set(id, { ...job, timer });
    w.ref();
    w.postMessage({ id, op, xml });
  }

  private start(): Worker | undefined {
    if (this.worker || this.brokenBecause) return this.worker;
    let w: Worker;
    try {
      const module = this.options.module ?? createRequire(import.meta.url).resolve('fast-xml-parser');
      w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module, options: XML_PARSER_OPTIONS, prettyParser: PRETTY_PARSER_OPTIONS, prettyBuilder: PRETTY_BUILDER_OPTIONS },
      });
    } catch (err) {
      // the platform cannot run it at all: no use trying again
      this.brokenBecause = `the worker thread could not start: ${(err as Error).message}`;
      return undefined;
    }
    w.unref();
    w.on('message', (r: Reply) => {
      const job = this.waiting.get(r.id);
      if (!job) return;
      this.waiting.delete(r.id);
      clearTimeout(job.timer);
      this.answered++;
      if (!this.waiting.size) w.unref();
      job.answer(r);
    });
    w.on('error', (err: Error) => this.retire(w, `the worker thread failed: ${err.message}`));
    w.on('exit', (code: number) => this.retire(w, `the worker thread stopped (exit code ${code})`));
    this.worker = w;
    return w;
  }

  /** Forgets a worker that failed, died or is late (`end`: it is stopped), and loses its jobs. */
  private retire(w: Worker, why: string, end = false): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    if (!this.options.restart) this.brokenBecause = why;
    if (end) void w.terminate();
    const jobs = [...this.waiting.values()];
    this.waiting.clear();
    for (const job of jobs) {
      clearTimeout(job.timer);
      job.lost(why);
    }
  }
}

const parseWorker = new XmlWorker({ restart: false });

/** Parses an XML message off the main thread; the same result as `parseXmlMessage`. Never throws. */
export function parseXmlOffThread(xml: string): Promise<ParsedMessage> {
  const refused = xmlRefusal(xml);
  if (refused) return Promise.resolve(refused);
  return new Promise((resolve) =>
    parseWorker.send('parse', xml, {
      answer: (r) => {
        if (r.invalid) resolve(notWellFormed(r.invalid));
        else if (r.error !== undefined) resolve({ state: 'unparseable', reason: `not well-formed XML: ${r.error}` });
        else resolve(fromXmlDocument(r.doc ?? {}));
      },
      // what was sent is parsed here: a message is never left unread because the thread died
      lost: () => resolve(parseXmlMessage(xml)),
    }),
  );
}

export interface PrettyText {
  /** as `prettyPrint` gives it */
  text: string;
  /** set when `text` is as written because the worker failed or was late: why */
  unformatted?: string;
}

/** Pretty-prints XML on its own worker thread. */
export class OffThreadPrettyPrinter {
  private readonly worker: XmlWorker;

  constructor(options: { timeoutMs?: number; module?: string } = {}) {
    this.worker = new XmlWorker({ restart: true, timeoutMs: options.timeoutMs ?? PRETTY_TIMEOUT_MS, module: options.module });
  }

  /** XML pretty-printed by the worker (observable in tests: which path `messages.get` took) */
  get answered(): number {
    return this.worker.answered;
  }

  /** The same text as `prettyPrint(xml, 'xml')`, or the text as written and why. Never throws; never waits past the timeout. */
  print(xml: string): Promise<PrettyText> {
    // a DOCTYPE is refused here, before anything is sent, as inline
    if (declarationOffset(xml) >= 0) return Promise.resolve({ text: xml });
    return new Promise((resolve) =>
      this.worker.send('pretty', xml, {
        answer: (r) => resolve({ text: r.pretty ?? xml }),
        lost: (why) => resolve({ text: xml, unformatted: `the message is shown as written: ${why}` }),
      }),
    );
  }
}

/** The worker `messages.get` uses. */
export const prettyPrinter = new OffThreadPrettyPrinter();

/** Where a message file of this format and size is pretty-printed: JSON stays inline (16 ms for 2 MiB). */
export function prettyPrintPlace(format: 'xml' | 'json', bytes: number): 'inline' | 'worker' {
  return format === 'xml' && bytes >= PRETTY_OFF_THREAD_BYTES ? 'worker' : 'inline';
}

/** `prettyPrint`, with XML from PRETTY_OFF_THREAD_BYTES on the worker thread. Never throws. */
export async function prettyPrintMessage(content: string, format: 'xml' | 'json', bytes = Buffer.byteLength(content)): Promise<PrettyText> {
  return prettyPrintPlace(format, bytes) === 'worker' ? prettyPrinter.print(content) : { text: prettyPrint(content, format) };
}
