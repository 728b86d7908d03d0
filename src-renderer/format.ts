import type { OutboxItem } from '../src-shared/api';

/** Human-readable sizes, rates and durations. */
export function bytes(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function dateTime(iso: string, locale: string): string {
  return new Date(iso).toLocaleString(locale, { dateStyle: 'short', timeStyle: 'medium' });
}

/**
 * Lays JSON text out again — indented (`indent` spaces a level, as `JSON.stringify(v, null, indent)`
 * would) or on one line (`indent` 0) — without parsing its values: strings and numbers are kept as
 * written, so a large integer keeps its digits and `compact(indented(body))` is the body Fonds
 * wrote. `text` must be valid JSON (check it with `JSON.parse` first).
 */
export function layoutJson(text: string, indent: number): string {
  const newline = (depth: number) => (indent ? `\n${' '.repeat(depth * indent)}` : '');
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r';
  let out = '';
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j;
    } else if (c === '{' || c === '[') {
      let j = i + 1;
      while (isSpace(text[j])) j++;
      // an empty object or list stays `{}` / `[]`
      if (text[j] === '}' || text[j] === ']') {
        out += c + text[j];
        i = j;
      } else out += c + newline(++depth);
    } else if (c === '}' || c === ']') out += newline(--depth) + c;
    else if (c === ',') out += c + newline(depth);
    else if (c === ':') out += indent ? ': ' : ':';
    else if (!isSpace(c)) out += c;
  }
  return out;
}

/** The badge class of an outbox message's status (Messages → Outbox, a waiting patch request). */
export const outboxStatusClass = (s: OutboxItem['status']): string => ({ pending: 'busy', sending: 'busy', sent: 'ok', cancelled: 'idle', failed: 'bad' })[s];
