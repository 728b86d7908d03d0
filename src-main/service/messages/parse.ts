/**
 * Reads a Medona or SEDA 2.x message (XML, or JSON) and extracts what the index keeps. Never throws:
 * a message that cannot be read comes back as `unparseable`, one in another vocabulary as
 * `unknown`, each with the reason in words.
 */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { z } from 'zod';
import { daysInMonth } from '../../../src-shared/domain/calendar';
import { isMessageType, MEDONA_NAMESPACE, SEDA2_NAMESPACE_PREFIX, type MessageState } from '../../../src-shared/domain/message';

export interface ParsedMessage {
  state: MessageState;
  type?: string;
  schema?: string;
  /** lower-case, when the message carries one */
  status?: string;
  /** ISO 8601 UTC, when the message has a usable Date */
  date?: string;
  reference?: string;
  requestReference?: string;
  replyCode?: string;
  sender?: string;
  recipient?: string;
  comment?: string;
  /** why the message is unknown or unparseable, or a note on a parsed one (bad Date ...) */
  reason?: string;
}

/** Who sends and who receives each type: the organisation elements to read, in order. */
const roles: Record<string, [sender: string[], recipient: string[]]> = {
  Acknowledgement: [['Sender'], ['Receiver']],
  ArchiveTransfer: [['TransferringAgency'], ['ArchivalAgency']],
  ArchiveTransferReply: [['ArchivalAgency'], ['TransferringAgency']],
  ArchiveTransferRequest: [['TransferringAgency'], ['ArchivalAgency']],
  ArchiveTransferRequestReply: [['ArchivalAgency'], ['TransferringAgency']],
  ArchiveDeliveryRequest: [['Requester'], ['ArchivalAgency']],
  ArchiveDeliveryRequestReply: [['ArchivalAgency'], ['Requester']],
  ArchiveRestitution: [['ArchivalAgency'], ['OriginatingAgency']],
  ArchiveRestitutionRequest: [['ArchivalAgency'], ['OriginatingAgency']],
  ArchiveRestitutionRequestReply: [['OriginatingAgency'], ['ArchivalAgency']],
  ArchiveDestructionRequest: [['OriginatingAgency', 'Requester'], ['ArchivalAgency']],
  ArchiveDestructionRequestReply: [['ArchivalAgency'], ['OriginatingAgency', 'Requester']],
  ArchiveDestructionNotification: [['ArchivalAgency'], ['OriginatingAgency']],
  ArchiveModificationNotification: [['ArchivalAgency'], ['OriginatingAgency']],
  ArchivalProfileModificationNotification: [['ArchivalAgency'], ['OriginatingAgency']],
  AuthorizationControlAuthorityRequest: [['ArchivalAgency'], ['ControlAuthority']],
  AuthorizationControlAuthorityRequestReply: [['ControlAuthority'], ['ArchivalAgency']],
  AuthorizationOriginatingAgencyRequest: [['ArchivalAgency'], ['OriginatingAgency']],
  AuthorizationOriginatingAgencyRequestReply: [['OriginatingAgency'], ['ArchivalAgency']],
};
const anySender = ['Sender', 'TransferringAgency', 'Requester', 'ArchivalAgency'];
const anyRecipient = ['Receiver', 'ArchivalAgency', 'OriginatingAgency', 'Requester'];

/** How messages are parsed, here and on the worker thread (`parse-worker.ts`): plain data, cloned there. */
export const XML_PARSER_OPTIONS = {
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true,
  htmlEntities: false,
} as const;
const xmlParser = new XMLParser(XML_PARSER_OPTIONS);

export type Tree = Record<string, unknown>;

const localName = (key: string) => (key.includes(':') ? key.slice(key.indexOf(':') + 1) : key);

/** Children by local name (first of each), built once per element. */
const childMaps = new WeakMap<object, Map<string, unknown>>();

/** The first child element with this local name. */
function child(node: unknown, name: string): unknown {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return undefined;
  let map = childMaps.get(node);
  if (!map) {
    map = new Map();
    for (const k in node) {
      if (k.startsWith('@_') || k === '#text') continue;
      const local = localName(k);
      if (map.has(local)) continue;
      const v = (node as Tree)[k];
      map.set(local, Array.isArray(v) ? v[0] : v);
    }
    childMaps.set(node, map);
  }
  return map.get(name);
}

/** The text of an element (string, or an object with #text), trimmed; undefined when empty. */
function text(node: unknown): string | undefined {
  let v: unknown = node;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) v = (v as Tree)['#text'] ?? (v as Tree)['_'] ?? (v as Tree)['value'];
  if (typeof v === 'number' || typeof v === 'boolean') v = String(v);
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t ? t.slice(0, 1000) : undefined;
}

/** An organisation's identifier: <X><Identifier>…</Identifier></X> (SEDA 1 said Identification). */
function organisation(root: unknown, names: string[]): string | undefined {
  for (const n of names) {
    const org = child(root, n);
    if (org === undefined) continue;
    const id = text(child(org, 'Identifier')) ?? text(child(org, 'Identification')) ?? text(child(org, 'OrganizationIdentifier')) ?? text(org);
    if (id) return id;
  }
  return undefined;
}

const STATUS_SYNTAX = /^[A-Za-z][A-Za-z_-]{0,49}$/;

/**
 * xs:date (`2024-05-02`, `2024-05-02+02:00`) or xs:dateTime (`2024-05-02T10:00:00`, fractions,
 * `Z` or `±hh:mm`), four-digit years. Nothing looser: a purge counts delays from this date, and
 * Date.parse reads `7` as July 2001 and `Sprint 12` as December 2001.
 */
const XS_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?(?:(Z)|([+-])(\d{2}):(\d{2}))?$/;

/**
 * The instant of an xs:date or xs:dateTime, in ms; undefined when it is anything else or does not
 * exist (2023-02-29, 25:00:00). Without a time zone the value is taken as UTC, so that every
 * instance sharing the directory dates a message the same whatever its own zone; an xs:date is
 * its first instant (midnight in its zone). `24:00:00` is the end of the day, as XML Schema says.
 */
export function parseXsDateTime(raw: string): number | undefined {
  const m = XS_DATE_TIME.exec(raw);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, sec, frac, z, sign, zh, zm] = m;
  const [year, month, day] = [Number(y), Number(mo), Number(d)];
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  const [hour, minute, second] = [Number(h ?? 0), Number(mi ?? 0), Number(sec ?? 0)];
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  if (hour === 24 ? minute !== 0 || second !== 0 || /[1-9]/.test(frac ?? '') : hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMin = 0;
  if (!z && sign) {
    const [oh, om] = [Number(zh), Number(zm)];
    if (oh > 14 || om > 59 || (oh === 14 && om !== 0)) return undefined;
    offsetMin = (sign === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day); // Date.UTC maps years 0-99 to 1900-1999
  utc.setUTCHours(hour, minute, second, ms);
  return utc.getTime() - offsetMin * 60_000;
}

function normalizeDate(raw: string | undefined): { date?: string; note?: string } {
  if (!raw) return { note: 'no Date element: the file modification time is used' };
  const t = parseXsDateTime(raw);
  if (t === undefined) {
    return { note: `Date '${raw.slice(0, 60)}' is not readable as an xs:date or xs:dateTime (2024-05-02, 2024-05-02T10:00:00+02:00): the file modification time is used` };
  }
  return { date: new Date(t).toISOString() };
}

/** Extracts the fields of a message element (from XML, or JSON shaped like it). */
function fromElement(type: string, schema: string | undefined, root: unknown): ParsedMessage {
  const [senders, recipients] = roles[type] ?? [anySender, anyRecipient];
  const { date, note } = normalizeDate(text(child(root, 'Date')));
  const rawStatus = text(child(root, 'Status'));
  const status = rawStatus && STATUS_SYNTAX.test(rawStatus) ? rawStatus.toLowerCase() : undefined;
  const known = isMessageType(type);
  return {
    state: known ? 'ok' : 'unknown',
    type,
    ...(schema ? { schema } : {}),
    ...(status ? { status } : {}),
    ...(date ? { date } : {}),
    ...opt('reference', text(child(root, 'MessageIdentifier'))),
    ...opt('requestReference', text(child(root, 'MessageRequestIdentifier')) ?? text(child(root, 'MessageReceivedIdentifier'))),
    ...opt('replyCode', text(child(root, 'ReplyCode'))),
    ...opt('sender', organisation(root, senders)),
    ...opt('recipient', organisation(root, recipients)),
    ...opt('comment', text(child(root, 'Comment'))),
    ...(known ? (note ? { reason: note } : {}) : { reason: `<${type}> is not a known Medona message type` }),
  };
}

function opt<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

function schemaOf(ns: string | undefined): string | undefined {
  if (ns === MEDONA_NAMESPACE) return 'medona';
  if (ns?.startsWith(SEDA2_NAMESPACE_PREFIX)) return `seda2.${ns.slice(SEDA2_NAMESPACE_PREFIX.length)}`;
  return undefined;
}

/**
 * Where the XML has a markup declaration (`<!DOCTYPE`, `<!ENTITY` …) outside comments, CDATA
 * sections and processing instructions, or -1. The whole text is scanned (a long comment must not
 * hide one), in one pass of indexOf.
 */
export function declarationOffset(xml: string): number {
  let i = 0;
  for (;;) {
    i = xml.indexOf('<', i);
    if (i < 0) return -1;
    const c = xml.charCodeAt(i + 1);
    if (c === 0x21 /* ! */) {
      const close = xml.startsWith('<!--', i) ? '-->' : xml.startsWith('<![CDATA[', i) ? ']]>' : undefined;
      if (!close) return i;
      const end = xml.indexOf(close, i + 4);
      if (end < 0) return -1; // not closed: not well-formed, which the validator says
      i = end + close.length;
    } else if (c === 0x3f /* ? */) {
      const end = xml.indexOf('?>', i + 2);
      if (end < 0) return -1;
      i = end + 2;
    } else i++;
  }
}

/** Why the XML is refused for its document type declaration, or undefined. */
function declarationProblem(xml: string): string | undefined {
  const at = declarationOffset(xml);
  if (at < 0) return undefined;
  let line = 1;
  for (let i = xml.indexOf('\n'); i >= 0 && i < at; i = xml.indexOf('\n', i + 1)) line++;
  const what = /^<!([A-Za-z]*)/.exec(xml.slice(at, at + 20))?.[1] ?? '';
  return `the XML has a <!${what}…> declaration (line ${line}); document types (<!DOCTYPE>) and entities (<!ENTITY>) are refused, wherever they are`;
}

/** Why a message's XML is refused before it is parsed (a DOCTYPE, entities), or undefined. */
export function xmlRefusal(xml: string): ParsedMessage | undefined {
  const declared = declarationProblem(xml);
  return declared ? { state: 'unparseable', reason: declared } : undefined;
}

/** What the validator said, as the reason of an unparseable message. */
export function notWellFormed(err: { msg: string; line: number; col: number }): ParsedMessage {
  return { state: 'unparseable', reason: `not well-formed XML: ${err.msg} (line ${err.line}, column ${err.col})` };
}

export function parseXmlMessage(xml: string): ParsedMessage {
  const refused = xmlRefusal(xml);
  if (refused) return refused;
  const valid = XMLValidator.validate(xml);
  if (valid !== true) return notWellFormed(valid.err);
  let doc: Tree;
  try {
    doc = xmlParser.parse(xml) as Tree;
  } catch (err) {
    return { state: 'unparseable', reason: `not well-formed XML: ${(err as Error).message}` };
  }
  return fromXmlDocument(doc);
}

/**
 * The fields of a parsed XML document. Only the root, its children and their children's text are
 * looked at, so a tree cut below that (as the worker thread sends it back) gives the same fields.
 */
export function fromXmlDocument(doc: Tree): ParsedMessage {
  const roots = Object.keys(doc).filter((k) => !k.startsWith('?') && !k.startsWith('#'));
  if (roots.length === 0) return { state: 'unparseable', reason: 'the XML has no root element' };
  if (roots.length > 1 || Array.isArray(doc[roots[0]])) return { state: 'unparseable', reason: 'the XML has more than one root element' };
  const key = roots[0];
  const root = doc[key];
  const prefix = key.includes(':') ? key.slice(0, key.indexOf(':')) : '';
  const ns = typeof root === 'object' && root !== null ? (root as Tree)[prefix ? `@_xmlns:${prefix}` : '@_xmlns'] : undefined;
  const type = localName(key);
  const schema = schemaOf(typeof ns === 'string' ? ns : undefined);
  if (!schema) {
    return {
      state: 'unknown',
      type,
      reason:
        typeof ns === 'string'
          ? `root element <${type}> is in namespace '${ns.slice(0, 200)}', not Medona (${MEDONA_NAMESPACE}) or SEDA 2.x (${SEDA2_NAMESPACE_PREFIX}*)`
          : `root element <${type}> has no namespace (expected ${MEDONA_NAMESPACE} or ${SEDA2_NAMESPACE_PREFIX}*)`,
    };
  }
  return fromElement(type, schema, root);
}

/** Maarch's JSON form of a message (its `message` object: flat, camelCase). */
const flatJsonMessage = z.looseObject({
  type: z.string().min(1).max(200),
  schema: z.string().max(100).optional(),
  status: z.string().max(50).optional(),
  date: z.string().max(100).optional(),
  reference: z.string().max(1000).optional(),
  messageIdentifier: z.string().max(1000).optional(),
  requestReference: z.string().max(1000).optional(),
  replyCode: z.string().max(200).optional(),
  senderOrgRegNumber: z.string().max(1000).optional(),
  recipientOrgRegNumber: z.string().max(1000).optional(),
  sender: z.string().max(1000).optional(),
  recipient: z.string().max(1000).optional(),
  comment: z.string().max(5000).optional(),
});

export function parseJsonMessage(json: string): ParsedMessage {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (err) {
    return { state: 'unparseable', reason: `not valid JSON: ${(err as Error).message}` };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { state: 'unparseable', reason: 'the JSON is not an object' };
  const flat = flatJsonMessage.safeParse(doc);
  if (flat.success) {
    const m = flat.data;
    const known = isMessageType(m.type);
    const { date, note } = normalizeDate(m.date);
    const status = m.status && STATUS_SYNTAX.test(m.status) ? m.status.toLowerCase() : undefined;
    return {
      state: known ? 'ok' : 'unknown',
      type: m.type.slice(0, 200),
      ...opt('schema', m.schema),
      ...opt('status', status),
      ...opt('date', date),
      ...opt('reference', m.reference ?? m.messageIdentifier),
      ...opt('requestReference', m.requestReference),
      ...opt('replyCode', m.replyCode),
      ...opt('sender', m.senderOrgRegNumber ?? m.sender),
      ...opt('recipient', m.recipientOrgRegNumber ?? m.recipient),
      ...opt('comment', m.comment),
      ...(known ? (note ? { reason: note } : {}) : { reason: `'${m.type.slice(0, 200)}' is not a known Medona message type` }),
    };
  }
  // the element form: { "ArchiveTransfer": { "MessageIdentifier": …, … } }
  const keys = Object.keys(doc);
  if (keys.length === 1 && typeof (doc as Tree)[keys[0]] === 'object' && (doc as Tree)[keys[0]] !== null) {
    return fromElement(localName(keys[0]), 'medona', (doc as Tree)[keys[0]]);
  }
  return { state: 'unknown', reason: "the JSON has no 'type' field and is not a single message element" };
}

/** Parses by format; never throws. */
export function parseMessage(content: string, format: 'xml' | 'json'): ParsedMessage {
  try {
    return format === 'xml' ? parseXmlMessage(content) : parseJsonMessage(content);
  } catch (err) {
    return { state: 'unparseable', reason: `could not be read: ${(err as Error).message}` };
  }
}

/** How XML is pretty-printed, here and on the worker thread (`parse-worker.ts`): plain data, cloned there. */
export const PRETTY_PARSER_OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  commentPropName: '#comment',
  cdataPropName: '#cdata',
  processEntities: false,
  parseTagValue: false,
  trimValues: true,
} as const;
export const PRETTY_BUILDER_OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  format: true,
  indentBy: '  ',
  commentPropName: '#comment',
  cdataPropName: '#cdata',
  processEntities: false,
  suppressEmptyNode: true,
} as const;
const prettyParser = new XMLParser(PRETTY_PARSER_OPTIONS);
const prettyBuilder = new XMLBuilder(PRETTY_BUILDER_OPTIONS);

/**
 * Indented XML or JSON for reading; the text as it is when it cannot be parsed. On the calling
 * thread: about 15 ms for 128 KiB of XML, 200 ms for 2 MiB (`prettyPrintMessage` moves large XML
 * to a worker; its worker repeats these steps, keep them alike).
 */
export function prettyPrint(content: string, format: 'xml' | 'json'): string {
  try {
    if (format === 'json') return JSON.stringify(JSON.parse(content), null, 2);
    if (declarationOffset(content) >= 0 || XMLValidator.validate(content) !== true) return content;
    return String(prettyBuilder.build(prettyParser.parse(content))).trim();
  } catch {
    return content;
  }
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export interface OutgoingFields {
  type: string;
  reference: string;
  date: string;
  requestReference?: string;
  sender?: string;
  recipient?: string;
  comment?: string;
}

/** A Medona message of Fonds' own, in the Medona namespace. */
export function buildMedonaXml(f: OutgoingFields): string {
  const [senders, recipients] = roles[f.type] ?? [['Sender'], ['Receiver']];
  const lines = [`<?xml version="1.0" encoding="UTF-8"?>`, `<${f.type} xmlns="${MEDONA_NAMESPACE}">`];
  if (f.comment) lines.push(`  <Comment>${escapeXml(f.comment)}</Comment>`);
  lines.push(`  <Date>${escapeXml(f.date)}</Date>`, `  <MessageIdentifier>${escapeXml(f.reference)}</MessageIdentifier>`);
  if (f.requestReference) lines.push(`  <MessageRequestIdentifier>${escapeXml(f.requestReference)}</MessageRequestIdentifier>`);
  if (f.sender) lines.push(`  <${senders[0]}>`, `    <Identifier>${escapeXml(f.sender)}</Identifier>`, `  </${senders[0]}>`);
  if (f.recipient) lines.push(`  <${recipients[0]}>`, `    <Identifier>${escapeXml(f.recipient)}</Identifier>`, `  </${recipients[0]}>`);
  lines.push(`</${f.type}>`, '');
  return lines.join('\n');
}

/** The same message as JSON, in Maarch's flat form. */
export function buildMessageJson(f: OutgoingFields): string {
  return (
    JSON.stringify(
      {
        type: f.type,
        schema: 'medona',
        date: f.date,
        reference: f.reference,
        ...(f.requestReference ? { requestReference: f.requestReference } : {}),
        ...(f.sender ? { senderOrgRegNumber: f.sender } : {}),
        ...(f.recipient ? { recipientOrgRegNumber: f.recipient } : {}),
        ...(f.comment ? { comment: f.comment } : {}),
      },
      null,
      2,
    ) + '\n'
  );
}
