/**
 * Large XML messages parsed on a worker thread. fast-xml-parser takes about 175 ms per MiB on the
 * main thread (a 30 MiB transfer manifest blocked the event loop, and so every window and
 * transport, for 5 s). Here the main thread only reads the file and refuses DOCTYPEs (one indexOf
 * pass); validation and parsing run on one worker, which sends back the document cut to what the
 * index reads (root, children, grandchildren's text), so nothing large crosses back.
 *
 * If the worker cannot run (it failed to start, or died), the message is parsed here as before:
 * slower, never wrong.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { fromXmlDocument, notWellFormed, parseXmlMessage, XML_PARSER_OPTIONS, xmlRefusal, type ParsedMessage, type Tree } from './parse';

/** XML message files at least this large are parsed off the main thread. */
export const PARSE_OFF_THREAD_BYTES = 1024 * 1024;

/*
 * Plain CommonJS evaluated from this string (as the hash pool's and the checkpointer's workers),
 * so it runs the same under vitest, tsx and the bundled app; fast-xml-parser is required by the
 * path the main thread resolved. `prune` keeps what `fromXmlDocument` reads: the first of each
 * repeated element, objects three levels down, and text cut at the 1000 characters `text()` keeps
 * (uncut when trailing spaces would make the cut read shorter: values arrive trimmed already).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { XMLParser, XMLValidator } = require(workerData.module);
const parser = new XMLParser(workerData.options);
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
parentPort.on('message', ({ id, xml }) => {
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
});
`;

type Reply = { id: number; doc?: Tree; invalid?: { msg: string; line: number; col: number }; error?: string };

let worker: Worker | undefined;
let broken = false;
let nextId = 1;
const waiting = new Map<number, { xml: string; resolve: (p: ParsedMessage) => void }>();

function start(): Worker | undefined {
  if (worker || broken) return worker;
  try {
    const module = createRequire(import.meta.url).resolve('fast-xml-parser');
    const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, options: XML_PARSER_OPTIONS } });
    w.unref();
    w.on('message', (r: Reply) => {
      const job = waiting.get(r.id);
      if (!job) return;
      waiting.delete(r.id);
      if (r.invalid) job.resolve(notWellFormed(r.invalid));
      else if (r.error !== undefined) job.resolve({ state: 'unparseable', reason: `not well-formed XML: ${r.error}` });
      else job.resolve(fromXmlDocument(r.doc ?? {}));
      if (!waiting.size) w.unref();
    });
    const fail = () => {
      if (worker !== w) return;
      worker = undefined;
      broken = true;
      // what was sent is parsed here: a message is never left unread because the thread died
      for (const [id, job] of waiting) {
        waiting.delete(id);
        job.resolve(parseXmlMessage(job.xml));
      }
    };
    w.on('error', fail);
    w.on('exit', fail);
    worker = w;
  } catch {
    broken = true;
  }
  return worker;
}

/** Parses an XML message off the main thread; the same result as `parseXmlMessage`. Never throws. */
export function parseXmlOffThread(xml: string): Promise<ParsedMessage> {
  const refused = xmlRefusal(xml);
  if (refused) return Promise.resolve(refused);
  const w = start();
  if (!w) return Promise.resolve(parseXmlMessage(xml));
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, { xml, resolve });
    // the worker keeps the process alive only while it has work
    w.ref();
    w.postMessage({ id, xml });
  });
}
