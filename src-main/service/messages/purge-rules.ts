/**
 * removeMessageTask (seed 003): a string holding a JSON-like object with single quotes,
 *   { '<task>' : { 'type' : [...], 'status' : [...], 'delay' : '<ISO 8601 duration>' }, ... }
 * Real JSON is accepted too, and so is the seed's example as written: a bare `'Transferts' : {…}`
 * without the outer braces, or the whole value still inside the double quotes of the seed's
 * `removeMessageTask = "{…}"` line.
 *
 * Validation returns every problem, each naming the task and the field.
 */
import {
  finalStatuses,
  isMessageStatus,
  isMessageType,
  MessageTypes,
  type MessageStatus,
  type MessageType,
  type PurgeRuleError,
  type PurgeTask,
} from '../../../src-shared/domain/message';
import { parseDuration } from './duration';

/** What the JSON-like reader produces. */
type Value = string | number | boolean | null | Value[] | Entry[];
/** object members keep their order and duplicates, so duplicates can be reported */
interface Entry {
  key: string;
  value: Value;
  line: number;
}

class SyntaxProblem extends Error {}

/** A small reader for JSON with single- or double-quoted strings, comments refused, trailing commas allowed. */
class Reader {
  private i = 0;
  constructor(private readonly s: string) {}

  private where(at = this.i): string {
    const before = this.s.slice(0, at);
    const line = before.split('\n').length;
    const col = at - before.lastIndexOf('\n');
    return `line ${line}, column ${col}`;
  }

  line(at = this.i): number {
    return this.s.slice(0, at).split('\n').length;
  }

  fail(what: string, at = this.i): never {
    const found = at < this.s.length ? `'${this.s[at]}'` : 'the end of the text';
    throw new SyntaxProblem(`${what} at ${this.where(at)} (found ${found})`);
  }

  private space(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }

  atEnd(): boolean {
    this.space();
    return this.i >= this.s.length;
  }

  peek(): string | undefined {
    this.space();
    return this.s[this.i];
  }

  expect(ch: string): void {
    if (this.peek() !== ch) this.fail(`expected '${ch}'`);
    this.i++;
  }

  value(): Value {
    const c = this.peek();
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === "'" || c === '"') return this.string();
    const m = /^(?:true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(this.s.slice(this.i));
    if (!m) this.fail('expected a value (a quoted string, a list [...] or an object {...})');
    this.i += m[0].length;
    return m[0] === 'true' ? true : m[0] === 'false' ? false : m[0] === 'null' ? null : Number(m[0]);
  }

  string(): string {
    const quote = this.s[this.i];
    const start = this.i;
    this.i++;
    let out = '';
    while (this.i < this.s.length) {
      const c = this.s[this.i++];
      if (c === quote) return out;
      if (c === '\n') this.fail('a string is not closed before the end of the line', start);
      if (c === '\\') {
        const e = this.s[this.i++];
        const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '/': '/', '\\': '\\', "'": "'", '"': '"' };
        if (e in simple) out += simple[e];
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(this.s.slice(this.i, this.i + 4))) {
          out += String.fromCharCode(parseInt(this.s.slice(this.i, this.i + 4), 16));
          this.i += 4;
        } else this.fail('unknown escape in a string', this.i - 1);
      } else out += c;
    }
    return this.fail('a string is not closed', start);
  }

  array(): Value[] {
    this.expect('[');
    const out: Value[] = [];
    for (;;) {
      if (this.peek() === ']') {
        this.i++;
        return out;
      }
      out.push(this.value());
      const c = this.peek();
      if (c === ',') this.i++;
      else if (c !== ']') this.fail("expected ',' or ']' in a list");
    }
  }

  object(): Entry[] {
    this.expect('{');
    const out = this.members('}');
    this.expect('}');
    return out;
  }

  /** `key : value` pairs until `close` (or the end of the text when close is undefined). */
  members(close: string | undefined): Entry[] {
    const out: Entry[] = [];
    for (;;) {
      const c = this.peek();
      if (c === close || (close === undefined && c === undefined)) return out;
      if (c !== "'" && c !== '"') this.fail('expected a quoted name');
      const line = this.line();
      const key = this.string();
      this.expect(':');
      out.push({ key, value: this.value(), line });
      const next = this.peek();
      if (next === ',') this.i++;
      else if (next !== close && !(close === undefined && next === undefined)) this.fail(close ? `expected ',' or '${close}'` : "expected ','");
    }
  }
}

/** Reads the text into task entries, or throws SyntaxProblem. */
function readTasks(text: string): Entry[] {
  let s = text.trim();
  // the value as the seed's config line writes it: removeMessageTask = "{ ... }"
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"') && s.slice(1).trimStart().startsWith('{')) s = s.slice(1, -1).trim();
  const r = new Reader(s);
  if (r.peek() === '{') {
    const tasks = r.object();
    if (!r.atEnd()) r.fail('unexpected text after the closing }');
    return tasks;
  }
  // the seed's example as written: bare  'Transferts' : { ... }  members without outer braces
  return r.members(undefined);
}

const TASK_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;
const FIELDS = ['type', 'status', 'delay'] as const;

function describe(v: Value): string {
  if (Array.isArray(v)) return v.length && typeof v[0] === 'object' && v[0] !== null && 'key' in (v[0] as object) ? 'an object' : 'a list';
  return v === null ? 'null' : typeof v === 'string' ? `'${v}'` : String(v);
}

function isObject(v: Value): v is Entry[] {
  return Array.isArray(v) && v.every((e) => typeof e === 'object' && e !== null && !Array.isArray(e) && 'key' in e);
}

function suggestType(t: string): string {
  const near = MessageTypes.find((k) => k.toLowerCase() === t.toLowerCase());
  return near ? ` (did you mean ${near}?)` : ` (known: ${MessageTypes.join(', ')})`;
}

export interface ParsedRules {
  tasks: PurgeTask[];
  errors: PurgeRuleError[];
}

/**
 * Parses and validates removeMessageTask. An empty text means no task. When `errors` is not empty
 * no purge may run: `tasks` then holds only the tasks that passed, for display.
 */
export function parsePurgeRules(text: string): ParsedRules {
  if (text.trim() === '') return { tasks: [], errors: [] };
  let entries: Entry[];
  try {
    entries = readTasks(text);
  } catch (err) {
    if (err instanceof SyntaxProblem) return { tasks: [], errors: [{ task: '', field: 'syntax', message: `removeMessageTask: ${err.message}` }] };
    throw err;
  }
  const errors: PurgeRuleError[] = [];
  const tasks: PurgeTask[] = [];
  const seen = new Set<string>();
  if (entries.length === 0) errors.push({ task: '', field: 'syntax', message: 'removeMessageTask: no task is defined (empty object)' });
  for (const entry of entries) {
    const name = entry.key;
    const fail = (field: PurgeRuleError['field'], message: string) => errors.push({ task: name, field, message: `task '${name}', ${field}: ${message}` });
    const before = errors.length;
    if (!TASK_NAME.test(name)) fail('name', "a task name starts with a letter and has only letters, digits, '-' and '_'");
    if (seen.has(name)) fail('name', `the task is defined twice (line ${entry.line})`);
    seen.add(name);
    if (!isObject(entry.value)) {
      fail('task', `expected an object {'type': [...], 'status': [...], 'delay': '...'}, found ${describe(entry.value)}`);
      continue;
    }
    const fields = new Map<string, Value>();
    for (const f of entry.value) {
      if (!(FIELDS as readonly string[]).includes(f.key)) fail('task', `unknown field '${f.key}' (expected type, status, delay)`);
      else if (fields.has(f.key)) fail(f.key as PurgeRuleError['field'], 'given twice');
      else fields.set(f.key, f.value);
    }
    const list = (field: 'type' | 'status'): string[] | undefined => {
      const v = fields.get(field);
      if (v === undefined) return void fail(field, 'missing');
      const items = typeof v === 'string' ? [v] : v;
      if (!Array.isArray(items) || isObject(items) && items.length > 0 || !items.every((x) => typeof x === 'string')) {
        return void fail(field, `expected a list of names like ['…', '…'], found ${describe(v)}`);
      }
      if (items.length === 0) return void fail(field, 'the list is empty');
      return items as string[];
    };
    const types = list('type');
    const statuses = list('status');
    const knownTypes: MessageType[] = [];
    for (const t of types ?? []) {
      if (isMessageType(t)) knownTypes.push(t);
      else fail('type', `'${t}' is not a Medona message type${suggestType(t)}`);
    }
    const lower: MessageStatus[] = [];
    for (const s of statuses ?? []) {
      const l = s.toLowerCase();
      if (!isMessageStatus(l)) {
        fail('status', `'${s}' is not a message status`);
        continue;
      }
      // every status must be final for EVERY type of the task, or data could go before its transaction ends
      for (const t of knownTypes) {
        const finals = finalStatuses[t] ?? [];
        if (!finals.includes(l)) {
          fail(
            'status',
            finals.length
              ? `'${s}' is not a final status of ${t} (final: ${finals.map((x) => x.toUpperCase()).join(', ')}); data would be destroyed before the transaction ends`
              : `${t} has no final status, so no status of it may be purged`,
          );
        }
      }
      if (!lower.includes(l)) lower.push(l);
    }
    const delay = fields.get('delay');
    if (delay === undefined) fail('delay', 'missing');
    else if (typeof delay !== 'string') fail('delay', `expected an ISO 8601 duration in quotes, found ${describe(delay)}`);
    else {
      const d = parseDuration(delay);
      if ('error' in d) fail('delay', d.error);
    }
    if (errors.length === before) tasks.push({ name, types: knownTypes, statuses: lower, delay: delay as string });
  }
  return { tasks, errors };
}
