/**
 * removeMessageTask as seed 003 writes it, real JSON, and every invalid rule with its reason;
 * ISO 8601 delays and counting them back from now.
 */
import { describe, expect, it } from 'vitest';
import { parseDuration, subtractDuration } from '../../src-main/service/messages/duration';
import { parsePurgeRules } from '../../src-main/service/messages/purge-rules';

/** The seed's example, byte for byte as written in seed 003. */
const SEED_EXAMPLE = `'Transferts' : {
'type' : ['ArchiveTransfer'],
'status' : ['processed', 'rejected', 'invalid'],
'delay' : 'P7D'
}`;

const transferts = { name: 'Transferts', types: ['ArchiveTransfer'], statuses: ['processed', 'rejected', 'invalid'], delay: 'P7D' };

describe('reading removeMessageTask', () => {
  it("parses the seed's example task 'Transferts' as written", () => {
    expect(parsePurgeRules(SEED_EXAMPLE)).toEqual({ tasks: [transferts], errors: [] });
  });

  it('parses the seed example inside the outer braces, and inside the double quotes of the config line', () => {
    expect(parsePurgeRules(`{\n${SEED_EXAMPLE}\n}`)).toEqual({ tasks: [transferts], errors: [] });
    expect(parsePurgeRules(`"{\n${SEED_EXAMPLE}\n}"`)).toEqual({ tasks: [transferts], errors: [] });
  });

  it('parses several tasks in the seed format, in order', () => {
    const text = `{
'Transferts' : {
'type' : ['ArchiveTransfer'],
'status' : ['PROCESSED', 'REJECTED'],
'delay' : 'P1M'
},
'Communications_2' : {
'type' : ['ArchiveDeliveryRequestReply'],
'status' : ['received'],
'delay' : 'PT12H'
},
}`;
    const r = parsePurgeRules(text);
    expect(r.errors).toEqual([]);
    expect(r.tasks).toEqual([
      { name: 'Transferts', types: ['ArchiveTransfer'], statuses: ['processed', 'rejected'], delay: 'P1M' },
      { name: 'Communications_2', types: ['ArchiveDeliveryRequestReply'], statuses: ['received'], delay: 'PT12H' },
    ]);
  });

  it('accepts real JSON', () => {
    const json = JSON.stringify({ 'Restitutions-old': { type: ['ArchiveRestitution'], status: ['Rejected', 'processed'], delay: 'P1Y2M3DT4H' } });
    expect(parsePurgeRules(json)).toEqual({
      tasks: [{ name: 'Restitutions-old', types: ['ArchiveRestitution'], statuses: ['rejected', 'processed'], delay: 'P1Y2M3DT4H' }],
      errors: [],
    });
  });

  it('accepts statuses final for every type of a task listing several types', () => {
    const r = parsePurgeRules(`{'Rejets': {'type': ['ArchiveTransfer', 'ArchiveDeliveryRequestReply', 'ArchiveRestitution'], 'status': ['rejected'], 'delay': 'P30D'}}`);
    expect(r.errors).toEqual([]);
    expect(r.tasks[0].types).toHaveLength(3);
  });

  it('treats an empty setting as no task', () => {
    expect(parsePurgeRules('')).toEqual({ tasks: [], errors: [] });
    expect(parsePurgeRules('   \n')).toEqual({ tasks: [], errors: [] });
  });
});

/** The single error of a one-task rule set. */
function errorsOf(text: string) {
  return parsePurgeRules(text).errors;
}
const task = (name: string, body: string) => `{'${name}': {${body}}}`;
const ok = { type: `'type': ['ArchiveTransfer']`, status: `'status': ['processed']`, delay: `'delay': 'P7D'` };

describe('refusing invalid rules, naming task and field', () => {
  it.each([
    ['1Transfers', 'starts with a digit'],
    ['-x', 'starts with a dash'],
    ['Trans ferts', 'has a space'],
    ['Transferts!', 'has a special character'],
    ['Événements', 'has an accented letter'],
  ])("refuses the task name '%s' (%s)", (name) => {
    const errors = errorsOf(task(name, [ok.type, ok.status, ok.delay].join(',')));
    expect(errors).toEqual([
      { task: name, field: 'name', message: `task '${name}', name: a task name starts with a letter and has only letters, digits, '-' and '_'` },
    ]);
  });

  it('refuses an unknown message type, suggesting the right case', () => {
    expect(errorsOf(task('T', `'type': ['archivetransfer'], ${ok.status}, ${ok.delay}`))).toEqual([
      { task: 'T', field: 'type', message: "task 'T', type: 'archivetransfer' is not a Medona message type (did you mean ArchiveTransfer?)" },
    ]);
    const [e] = errorsOf(task('T', `'type': ['Invoice'], ${ok.status}, ${ok.delay}`));
    expect(e).toMatchObject({ task: 'T', field: 'type' });
    expect(e.message).toMatch(/^task 'T', type: 'Invoice' is not a Medona message type \(known: Acknowledgement, ArchiveTransfer, /);
  });

  it('refuses a status that is not final for the type (data would go before the transaction ends)', () => {
    expect(errorsOf(task('T', `${ok.type}, 'status': ['received'], ${ok.delay}`))).toEqual([
      {
        task: 'T',
        field: 'status',
        message: "task 'T', status: 'received' is not a final status of ArchiveTransfer (final: REJECTED, INVALID, PROCESSED); data would be destroyed before the transaction ends",
      },
    ]);
  });

  it('refuses a status final for one listed type but not for another', () => {
    // RECEIVED is final for ArchiveDeliveryRequestReply, not for ArchiveTransfer
    const errors = errorsOf(task('Mixed', `'type': ['ArchiveDeliveryRequestReply', 'ArchiveTransfer'], 'status': ['received'], ${ok.delay}`));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ task: 'Mixed', field: 'status' });
    expect(errors[0].message).toContain("'received' is not a final status of ArchiveTransfer");
  });

  it('refuses any status of a type that has no final status', () => {
    expect(errorsOf(task('T', `'type': ['ArchiveTransferReply'], 'status': ['processed'], ${ok.delay}`))).toEqual([
      { task: 'T', field: 'status', message: "task 'T', status: ArchiveTransferReply has no final status, so no status of it may be purged" },
    ]);
  });

  it('refuses a word that is no status at all', () => {
    expect(errorsOf(task('T', `${ok.type}, 'status': ['done'], ${ok.delay}`))).toEqual([
      { task: 'T', field: 'status', message: "task 'T', status: 'done' is not a message status" },
    ]);
  });

  it.each([
    ['7D', "'7D' is not an ISO 8601 duration (examples: P7D, PT12H, P1M, P1Y2M3DT4H)"],
    ['P', "'P' is not an ISO 8601 duration (examples: P7D, PT12H, P1M, P1Y2M3DT4H)"],
    ['P1DT', "'P1DT' is not an ISO 8601 duration (examples: P7D, PT12H, P1M, P1Y2M3DT4H)"],
    ['PT', "'PT' is not an ISO 8601 duration (examples: P7D, PT12H, P1M, P1Y2M3DT4H)"],
    ['p7d', "'p7d' is not an ISO 8601 duration (examples: P7D, PT12H, P1M, P1Y2M3DT4H)"],
    ['P7H', "'P7H' is not an ISO 8601 duration (examples: P7D, PT12H, P1M, P1Y2M3DT4H)"],
    ['-P7D', "'-P7D' is negative; a delay counts back from now and must be positive"],
    ['P1.5DT2H', "'P1.5DT2H': only the last component of a duration may have a fraction"],
    [' P7D', "' P7D' has spaces around it"],
  ])("refuses the delay '%s'", (delay, reason) => {
    expect(errorsOf(task('T', `${ok.type}, ${ok.status}, 'delay': '${delay}'`))).toEqual([{ task: 'T', field: 'delay', message: `task 'T', delay: ${reason}` }]);
  });

  it('refuses a delay that is not a string', () => {
    expect(errorsOf(task('T', `${ok.type}, ${ok.status}, 'delay': 7`))).toEqual([
      { task: 'T', field: 'delay', message: "task 'T', delay: expected an ISO 8601 duration in quotes, found 7" },
    ]);
  });

  it('refuses missing fields, empty lists, unknown fields and a task that is not an object', () => {
    expect(errorsOf(task('T', `${ok.type}, ${ok.status}`))).toEqual([{ task: 'T', field: 'delay', message: "task 'T', delay: missing" }]);
    expect(errorsOf(task('T', `${ok.status}, ${ok.delay}`))).toEqual([{ task: 'T', field: 'type', message: "task 'T', type: missing" }]);
    expect(errorsOf(task('T', `${ok.type}, 'status': [], ${ok.delay}`))).toEqual([{ task: 'T', field: 'status', message: "task 'T', status: the list is empty" }]);
    expect(errorsOf(task('T', `${ok.type}, ${ok.status}, ${ok.delay}, 'delai': 'P1D'`))).toEqual([
      { task: 'T', field: 'task', message: "task 'T', task: unknown field 'delai' (expected type, status, delay)" },
    ]);
    expect(errorsOf(`{'T': ['ArchiveTransfer']}`)).toEqual([
      { task: 'T', field: 'task', message: "task 'T', task: expected an object {'type': [...], 'status': [...], 'delay': '...'}, found a list" },
    ]);
    expect(errorsOf(task('T', `'type': [1], ${ok.status}, ${ok.delay}`))[0]).toMatchObject({ task: 'T', field: 'type' });
  });

  it('refuses a task defined twice', () => {
    const body = [ok.type, ok.status, ok.delay].join(',');
    const errors = errorsOf(`{'T': {${body}},\n'T': {${body}}}`);
    expect(errors).toEqual([{ task: 'T', field: 'name', message: "task 'T', name: the task is defined twice (line 2)" }]);
  });

  it('reports every problem of every task, not just the first', () => {
    const r = parsePurgeRules(`{
      'Good': {'type': ['ArchiveTransfer'], 'status': ['processed'], 'delay': 'P7D'},
      '9bad': {'type': ['Nope'], 'status': ['received'], 'delay': 'seven days'}
    }`);
    expect(r.tasks.map((t) => t.name)).toEqual(['Good']);
    expect(r.errors.map((e) => `${e.task}/${e.field}`)).toEqual(['9bad/name', '9bad/type', '9bad/delay']);
  });

  it.each([
    [`{'T': {'type': ['ArchiveTransfer'] 'status': ['processed']}}`, "removeMessageTask: expected ',' or '}' at line 1, column 36 (found ''')"],
    [`{'T': {'type': ['ArchiveTransfer'}}`, "removeMessageTask: expected ',' or ']' in a list at line 1, column 34 (found '}')"],
    [`{'T': {'type': ['ArchiveTransfer]}}`, 'removeMessageTask: a string is not closed at line 1, column 17'],
    [`{'T': {type: []}}`, "removeMessageTask: expected a quoted name at line 1, column 8 (found 't')"],
    [`{'T': {}} trailing`, "removeMessageTask: unexpected text after the closing } at line 1, column 11 (found 't')"],
    ['{}', 'removeMessageTask: no task is defined (empty object)'],
  ])('reports a syntax error with its place: %s', (text, message) => {
    const errors = errorsOf(text);
    expect(errors[0].field).toBe('syntax');
    expect(errors[0].task).toBe('');
    expect(errors[0].message).toContain(message);
  });
});

describe('ISO 8601 delays', () => {
  it.each([
    ['P7D', { days: 7 }],
    ['PT12H', { hours: 12 }],
    ['P1M', { months: 1 }],
    ['P1Y2M3DT4H', { years: 1, months: 2, days: 3, hours: 4 }],
    ['P2W', { weeks: 2 }],
    ['PT30M', { minutes: 30 }],
    ['PT0.5S', { seconds: 0.5 }],
    ['P0D', {}],
    ['P1DT2H3M4S', { days: 1, hours: 2, minutes: 3, seconds: 4 }],
  ])('reads %s', (text, parts) => {
    const zero = { years: 0, months: 0, weeks: 0, days: 0, hours: 0, minutes: 0, seconds: 0 };
    expect(parseDuration(text)).toEqual({ duration: { ...zero, ...parts } });
  });

  const back = (now: string, text: string) => {
    const d = parseDuration(text);
    if ('error' in d) throw new Error(d.error);
    return subtractDuration(new Date(now), d.duration).toISOString();
  };

  it('counts days, hours and weeks back exactly', () => {
    expect(back('2026-03-10T12:00:00.000Z', 'P7D')).toBe('2026-03-03T12:00:00.000Z');
    expect(back('2026-03-10T12:00:00.000Z', 'PT12H')).toBe('2026-03-10T00:00:00.000Z');
    expect(back('2026-03-10T12:00:00.000Z', 'P2W')).toBe('2026-02-24T12:00:00.000Z');
  });

  it('counts months and years back on the calendar', () => {
    expect(back('2026-03-10T12:00:00.000Z', 'P1M')).toBe('2026-02-10T12:00:00.000Z');
    expect(back('2026-01-15T00:00:00.000Z', 'P1M')).toBe('2025-12-15T00:00:00.000Z');
    expect(back('2026-06-30T08:00:00.000Z', 'P1Y2M3DT4H')).toBe('2025-04-27T04:00:00.000Z');
  });

  it('clamps to the end of a shorter month, never counting back less than the delay', () => {
    expect(back('2026-03-31T10:00:00.000Z', 'P1M')).toBe('2026-02-28T10:00:00.000Z');
    expect(back('2024-03-31T10:00:00.000Z', 'P1M')).toBe('2024-02-29T10:00:00.000Z');
    expect(back('2024-02-29T10:00:00.000Z', 'P1Y')).toBe('2023-02-28T10:00:00.000Z');
  });
});
