/** Reading Medona and SEDA 2.x messages: what the index keeps, and why a message could not be read. */
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { groupTopLevel, ownerOfTopLevelFile, unsafeMessageId } from '../../src-main/service/messages/directory';
import { buildMedonaXml, parseMessage, parseXmlMessage, prettyPrint } from '../../src-main/service/messages/parse';
import {
  OffThreadPrettyPrinter,
  parseXmlOffThread,
  PRETTY_OFF_THREAD_BYTES,
  prettyPrinter,
  prettyPrintMessage,
  prettyPrintPlace,
} from '../../src-main/service/messages/parse-worker';
import { tempDirs } from '../helpers/util';

const transfer = `<?xml version="1.0" encoding="UTF-8"?>
<ArchiveTransfer xmlns="org:afnor:medona:1.0">
  <Comment>Versement 2024 &amp; annexes</Comment>
  <Date>2024-05-02T10:00:00+02:00</Date>
  <MessageIdentifier>MAARCH-TR-0001</MessageIdentifier>
  <ArchivalAgreement>AGR-7</ArchivalAgreement>
  <ArchivalAgency><Identifier>ARCHIVES-DEP</Identifier></ArchivalAgency>
  <TransferringAgency><Identifier>SERVICE-RH</Identifier></TransferringAgency>
</ArchiveTransfer>`;

describe('Medona and SEDA 2.x XML', () => {
  it('reads type, date, reference and organisations of a Medona transfer', () => {
    expect(parseMessage(transfer, 'xml')).toEqual({
      state: 'ok',
      type: 'ArchiveTransfer',
      schema: 'medona',
      date: '2024-05-02T08:00:00.000Z',
      reference: 'MAARCH-TR-0001',
      sender: 'SERVICE-RH',
      recipient: 'ARCHIVES-DEP',
      comment: 'Versement 2024 & annexes',
    });
  });

  it('reads a prefixed SEDA 2.1 delivery reply with its request reference, reply code and status', () => {
    const xml = `<seda:ArchiveDeliveryRequestReply xmlns:seda="fr:gouv:culture:archivesdefrance:seda:v2.1">
      <seda:Date>2024-01-01</seda:Date><seda:MessageIdentifier>R-9</seda:MessageIdentifier>
      <seda:MessageRequestIdentifier>Q-3</seda:MessageRequestIdentifier><seda:ReplyCode>000</seda:ReplyCode>
      <seda:Status>RECEIVED</seda:Status>
      <seda:ArchivalAgency><seda:Identifier>AA</seda:Identifier></seda:ArchivalAgency>
      <seda:Requester><seda:Identifier schemeID="siret">REQ</seda:Identifier></seda:Requester>
    </seda:ArchiveDeliveryRequestReply>`;
    expect(parseMessage(xml, 'xml')).toMatchObject({
      state: 'ok',
      type: 'ArchiveDeliveryRequestReply',
      schema: 'seda2.1',
      status: 'received',
      date: '2024-01-01T00:00:00.000Z',
      reference: 'R-9',
      requestReference: 'Q-3',
      replyCode: '000',
      sender: 'AA',
      recipient: 'REQ',
    });
  });

  it('says why a message is unknown: wrong namespace, no namespace, unknown element', () => {
    expect(parseMessage('<ArchiveTransfer xmlns="urn:other"/>', 'xml')).toEqual({
      state: 'unknown',
      type: 'ArchiveTransfer',
      reason: "root element <ArchiveTransfer> is in namespace 'urn:other', not Medona (org:afnor:medona:1.0) or SEDA 2.x (fr:gouv:culture:archivesdefrance:seda:v2.*)",
    });
    expect(parseMessage('<ArchiveTransfer/>', 'xml').reason).toBe(
      'root element <ArchiveTransfer> has no namespace (expected org:afnor:medona:1.0 or fr:gouv:culture:archivesdefrance:seda:v2.*)',
    );
    expect(parseMessage('<Invoice xmlns="org:afnor:medona:1.0"><Date>2024-01-01</Date></Invoice>', 'xml')).toMatchObject({
      state: 'unknown',
      type: 'Invoice',
      reason: '<Invoice> is not a known Medona message type',
    });
  });

  it('says why a message is unparseable, never throwing', () => {
    expect(parseMessage('<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Date>', 'xml')).toMatchObject({ state: 'unparseable' });
    expect(parseMessage('<a><b></a>', 'xml').reason).toMatch(/^not well-formed XML: Expected closing tag 'b' .* \(line 1, column 7\)$/);
    expect(parseMessage('<a/><b/>', 'xml').reason).toBe('the XML has more than one root element');
    expect(parseMessage('', 'xml').state).toBe('unparseable');
    expect(parseMessage('<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', 'xml').reason).toBe(
      'the XML has a <!DOCTYPE…> declaration (line 1); document types (<!DOCTYPE>) and entities (<!ENTITY>) are refused, wherever they are',
    );
    expect(parseMessage('\u0000\u0001binary', 'xml').state).toBe('unparseable');
  });

  it('notes a missing or wrong Date (the index then uses the file time)', () => {
    expect(parseMessage('<ArchiveTransfer xmlns="org:afnor:medona:1.0"/>', 'xml')).toMatchObject({
      state: 'ok',
      reason: 'no Date element: the file modification time is used',
    });
    expect(parseMessage('<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Date>yesterday</Date></ArchiveTransfer>', 'xml').reason).toBe(
      "Date 'yesterday' is not readable as an xs:date or xs:dateTime (2024-05-02, 2024-05-02T10:00:00+02:00): the file modification time is used",
    );
  });
});

describe('the Date of a message (a purge counts its delay from it)', () => {
  const dated = (d: string) => parseMessage(`<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Date>${d}</Date></ArchiveTransfer>`, 'xml');

  it.each([
    ['2024-05-02', '2024-05-02T00:00:00.000Z'],
    ['2024-05-02Z', '2024-05-02T00:00:00.000Z'],
    ['2024-05-02+02:00', '2024-05-01T22:00:00.000Z'],
    ['2024-05-02T10:00:00Z', '2024-05-02T10:00:00.000Z'],
    ['2024-05-02T10:00:00.123456-05:30', '2024-05-02T15:30:00.123Z'],
    ['2024-02-29T23:59:59+14:00', '2024-02-29T09:59:59.000Z'],
    ['2024-12-31T24:00:00Z', '2025-01-01T00:00:00.000Z'],
    ['0050-03-01', '0050-03-01T00:00:00.000Z'],
  ])('reads the xs:date or xs:dateTime %j', (raw, iso) => {
    expect(dated(raw)).toMatchObject({ state: 'ok', date: iso });
    expect(dated(raw).reason).toBeUndefined();
  });

  it('reads a date-time without a time zone as UTC, whatever the zone of the instance', () => {
    expect(dated('2024-05-02T10:00:00').date).toBe('2024-05-02T10:00:00.000Z');
    expect(parseMessage(JSON.stringify({ type: 'ArchiveTransfer', date: '2024-05-02T10:00:00' }), 'json').date).toBe('2024-05-02T10:00:00.000Z');
  });

  it.each(['7', 'Sprint 12', '12/05/2024', '2024', '2024-05', '2024-5-2', '2024-05-02 10:00:00', '2024-05-02T10:00', '2024-02-30', '2023-02-29', '2024-05-02T25:00:00', '2024-05-02T10:00:60', '2024-05-02T24:00:01', '2024-05-02T10:00:00+15:00', '2024-05-02T10:00:00+0200', 'Thu, 02 May 2024 10:00:00 GMT', '+2024-05-02', '12024-05-02'])(
    'does not read %j as a date: the file time is used, and the message says so',
    (raw) => {
      const m = dated(raw);
      expect(m.state).toBe('ok');
      expect(m.date).toBeUndefined();
      expect(m.reason).toBe(`Date '${raw}' is not readable as an xs:date or xs:dateTime (2024-05-02, 2024-05-02T10:00:00+02:00): the file modification time is used`);
    },
  );

  it('is as strict for JSON messages', () => {
    expect(parseMessage(JSON.stringify({ type: 'ArchiveTransfer', date: '7' }), 'json')).toMatchObject({ state: 'ok', reason: expect.stringMatching(/^Date '7' is not readable/) });
    expect(parseMessage(JSON.stringify({ type: 'ArchiveTransfer', date: '7' }), 'json').date).toBeUndefined();
    expect(parseMessage(JSON.stringify({ ArchiveTransfer: { Date: 'Sprint 12' } }), 'json').date).toBeUndefined();
  });
});

describe('document types and entities', () => {
  it('refuses a DOCTYPE after a long comment (no window in which to hide one)', () => {
    const xml = `<?xml version="1.0"?>\n<!-- ${'x'.repeat(70 * 1024)} -->\n<!DOCTYPE ArchiveTransfer [<!ENTITY big "${'b'.repeat(100)}">]>\n<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Comment>&big;</Comment></ArchiveTransfer>`;
    expect(parseMessage(xml, 'xml')).toEqual({
      state: 'unparseable',
      reason: 'the XML has a <!DOCTYPE…> declaration (line 3); document types (<!DOCTYPE>) and entities (<!ENTITY>) are refused, wherever they are',
    });
    expect(prettyPrint(xml, 'xml')).toBe(xml);
  });

  it('refuses a DOCTYPE without entities, and any declaration wherever it is', () => {
    expect(parseMessage('<!DOCTYPE ArchiveTransfer SYSTEM "http://example.org/x.dtd"><ArchiveTransfer xmlns="org:afnor:medona:1.0"/>', 'xml').reason).toMatch(/^the XML has a <!DOCTYPE…> declaration/);
    expect(parseMessage('<ArchiveTransfer xmlns="org:afnor:medona:1.0">\n<!ENTITY a "b"></ArchiveTransfer>', 'xml').reason).toMatch(/^the XML has a <!ENTITY…> declaration \(line 2\)/);
  });

  it('reads a message whose comments, CDATA or processing instructions merely mention <!DOCTYPE', () => {
    const xml = `<?xml version="1.0"?><?note <!DOCTYPE in a PI ?><!-- <!DOCTYPE in a comment -->
      <ArchiveTransfer xmlns="org:afnor:medona:1.0"><Comment><![CDATA[<!DOCTYPE html><!ENTITY x "y">]]></Comment><Date>2024-01-01</Date></ArchiveTransfer>`;
    expect(parseMessage(xml, 'xml')).toMatchObject({ state: 'ok', type: 'ArchiveTransfer', comment: '<!DOCTYPE html><!ENTITY x "y">', date: '2024-01-01T00:00:00.000Z' });
  });

  it('writes Fonds messages that read back the same', () => {
    const xml = buildMedonaXml({ type: 'ArchiveRestitution', reference: 'F-1', date: '2025-01-01T00:00:00.000Z', sender: 'ARCH <&>', recipient: 'ORIG' });
    expect(parseMessage(xml, 'xml')).toMatchObject({ state: 'ok', type: 'ArchiveRestitution', reference: 'F-1', sender: 'ARCH <&>', recipient: 'ORIG' });
  });

  it('pretty-prints XML with indentation and leaves broken XML as it is', () => {
    const pretty = prettyPrint('<a xmlns="org:afnor:medona:1.0"><b>1</b><c><d>2</d></c></a>', 'xml');
    expect(pretty).toBe('<a xmlns="org:afnor:medona:1.0">\n  <b>1</b>\n  <c>\n    <d>2</d>\n  </c>\n</a>');
    expect(prettyPrint('<a><b>', 'xml')).toBe('<a><b>');
    expect(prettyPrint('{"a":[1,2]}', 'json')).toBe('{\n  "a": [\n    1,\n    2\n  ]\n}');
  });
});

describe('large messages, parsed off the main thread', () => {
  /** A transfer whose organisations come after a large DataObjectPackage, as in SEDA 2. */
  function bigTransfer(objects: number): string {
    const object = (i: number) => `<BinaryDataObject id="o${i}"><Uri>content/${i}.pdf</Uri><MessageDigest algorithm="SHA-512">${'ab'.repeat(64)}</MessageDigest><Size>1234</Size></BinaryDataObject>`;
    return `<?xml version="1.0"?>\n<ArchiveTransfer xmlns="fr:gouv:culture:archivesdefrance:seda:v2.1"><Comment>Gros versement</Comment><Date>2020-01-01T00:00:00Z</Date><MessageIdentifier>BIG-1</MessageIdentifier><Status>processed</Status>
      <DataObjectPackage>${Array.from({ length: objects }, (_, i) => object(i)).join('\n')}</DataObjectPackage>
      <ArchivalAgency><Identifier schemeID="siret">AD-33</Identifier></ArchivalAgency><TransferringAgency><Identifier>SERVICE-RH</Identifier></TransferringAgency></ArchiveTransfer>`;
  }

  it('gives the same fields as parsing on the main thread', async () => {
    const cases = [
      bigTransfer(500),
      transfer,
      '<a><b></a>',
      '<a/><b/>',
      '<ArchiveTransfer xmlns="urn:other"/>',
      '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
      `<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Comment>${'long '.repeat(500)}</Comment><Date>7</Date></ArchiveTransfer>`,
    ];
    for (const xml of cases) expect(await parseXmlOffThread(xml), xml.slice(0, 60)).toEqual(parseXmlMessage(xml));
  });

  it('keeps the event loop turning while a 20 MiB message is parsed', async () => {
    const xml = bigTransfer(80_000);
    expect(xml.length).toBeGreaterThan(20 * 1024 * 1024);
    let last = Date.now();
    let longest = 0;
    const tick = setInterval(() => {
      longest = Math.max(longest, Date.now() - last);
      last = Date.now();
    }, 5);
    const t0 = Date.now();
    const parsed = await parseXmlOffThread(xml);
    const took = Date.now() - t0;
    clearInterval(tick);
    expect(parsed).toMatchObject({ state: 'ok', type: 'ArchiveTransfer', schema: 'seda2.1', reference: 'BIG-1', status: 'processed', sender: 'SERVICE-RH', recipient: 'AD-33' });
    // the parse itself takes seconds; the main thread is held only to read and scan the text
    expect(took).toBeGreaterThan(longest * 3);
    expect(longest).toBeLessThan(500);
  });
});

describe('large messages, pretty-printed off the main thread', () => {
  const dir = tempDirs(afterEach);

  /** A Medona transfer of about `bytes`, with what pretty-printing must keep: comments, CDATA, entities, attributes, prefixes, empty elements. */
  function medona(bytes: number): string {
    const head = `<?xml version="1.0" encoding="UTF-8"?>\n<?maarch note="export"?>\n<ArchiveTransfer xmlns="org:afnor:medona:1.0" xmlns:xlink="http://www.w3.org/1999/xlink">
<Comment>Versement &amp; annexes — été</Comment><Date>2024-05-02T10:00:00Z</Date><MessageIdentifier>BIG-PP</MessageIdentifier>
<ArchivalAgency><Identifier>AA</Identifier></ArchivalAgency><TransferringAgency><Identifier>TA</Identifier></TransferringAgency><DataObjectPackage>`;
    const tail = '</DataObjectPackage></ArchiveTransfer>\n';
    const units: string[] = [];
    let size = head.length + tail.length;
    for (let i = 0; size < bytes; i++) {
      const unit = `<BinaryDataObject id="o${i}"><Attachment filename="f${i}.pdf"/><MessageDigest algorithm="SHA-512">${'ab'.repeat(32)}</MessageDigest><Size>${i}</Size></BinaryDataObject>
<!-- unit ${i} --><ArchiveUnit id="u${i}"><Content><Title xml:lang="fr">Dossier n° ${i} &lt;pièces&gt;</Title><Description><![CDATA[free <text> & ${i}]]></Description><xlink:ref xlink:href="#o${i}"></xlink:ref></Content></ArchiveUnit>\n`;
      units.push(unit);
      size += Buffer.byteLength(unit);
    }
    return head + units.join('') + tail;
  }

  it('gives the same text as pretty-printing inline, DOCTYPE refusal and broken XML included', async () => {
    const big = medona(1.5 * 1024 * 1024);
    const cases = [
      big,
      transfer,
      '<a xmlns="org:afnor:medona:1.0"><b>1</b><c><d>2</d></c></a>',
      '<a><b>',
      '<a/><b/>',
      '',
      '\u0000\u0001binary',
      `<?xml version="1.0"?>\n<!-- ${'x'.repeat(200 * 1024)} -->\n<!DOCTYPE ArchiveTransfer [<!ENTITY big "b">]>\n<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Comment>&big;</Comment></ArchiveTransfer>`,
    ];
    for (const xml of cases) expect(await prettyPrinter.print(xml), xml.slice(0, 60)).toEqual({ text: prettyPrint(xml, 'xml') });
    // the large one was indented, not merely returned as it is on both sides
    const inline = prettyPrint(big, 'xml');
    expect(inline).not.toBe(big);
    expect(inline).toContain('\n    <BinaryDataObject id="o0">\n      <Attachment filename="f0.pdf"/>');
    expect(inline).toContain('<![CDATA[free <text> & 7]]>');
  });

  it('uses the worker for XML from 128 KiB, the main thread below it and for JSON', async () => {
    expect(prettyPrintPlace('xml', PRETTY_OFF_THREAD_BYTES)).toBe('worker');
    expect(prettyPrintPlace('xml', PRETTY_OFF_THREAD_BYTES - 1)).toBe('inline');
    expect(prettyPrintPlace('json', 2 * 1024 * 1024)).toBe('inline');

    const large = medona(PRETTY_OFF_THREAD_BYTES + 1024);
    const small = medona(PRETTY_OFF_THREAD_BYTES - 4096);
    const before = prettyPrinter.answered;
    expect(await prettyPrintMessage(large, 'xml')).toEqual({ text: prettyPrint(large, 'xml') });
    expect(prettyPrinter.answered).toBe(before + 1);
    expect(await prettyPrintMessage(small, 'xml')).toEqual({ text: prettyPrint(small, 'xml') });
    const json = JSON.stringify({ items: Array.from({ length: 5000 }, (_, i) => ({ id: `o${i}`, uri: `content/${i}.pdf`, size: i })) });
    expect(await prettyPrintMessage(json, 'json')).toEqual({ text: prettyPrint(json, 'json') });
    // a DOCTYPE is refused before anything is sent
    const declared = `<!DOCTYPE a SYSTEM "x.dtd"><a>${'<b>1</b>'.repeat(20_000)}</a>`;
    expect(await prettyPrintMessage(declared, 'xml')).toEqual({ text: declared });
    expect(prettyPrinter.answered).toBe(before + 1);
  });

  it('shows the text as written, saying why, when the worker cannot run', async () => {
    const xml = medona(200 * 1024);
    const printer = new OffThreadPrettyPrinter({ module: path.join(dir(), 'no-such-parser.js') });
    for (let attempt = 0; attempt < 2; attempt++) {
      const shown = await printer.print(xml);
      expect(shown.text).toBe(xml);
      expect(shown.unformatted).toMatch(/^the message is shown as written: the worker thread failed: Cannot find module .*no-such-parser\.js/);
    }
    expect(printer.answered).toBe(0);
  });

  it('gives up on a worker that does not answer, stops it, and starts another for the next message', async () => {
    // a parser that never returns: the worker is stuck until it is stopped
    const stuck = path.join(dir(), 'stuck-parser.js');
    fs.writeFileSync(stuck, 'module.exports = { XMLParser: class {}, XMLBuilder: class {}, XMLValidator: { validate() { for (;;); } } };\n');
    const printer = new OffThreadPrettyPrinter({ module: stuck, timeoutMs: 50 });
    const xml = medona(200 * 1024);
    const shown = await Promise.all([printer.print(xml), printer.print(transfer)]);
    expect(shown).toEqual([
      { text: xml, unformatted: 'the message is shown as written: the worker thread did not answer within 50 ms and was stopped' },
      { text: transfer, unformatted: 'the message is shown as written: the worker thread did not answer within 50 ms and was stopped' },
    ]);
    expect(await printer.print(xml)).toEqual({ text: xml, unformatted: expect.stringContaining('did not answer within 50 ms') });
    expect(printer.answered).toBe(0);
  });
});

describe('JSON messages', () => {
  it("reads Maarch's flat JSON form, status included", () => {
    const json = JSON.stringify({ type: 'ArchiveTransfer', status: 'Processed', date: '2024-02-03T04:05:06Z', reference: 'J-1', senderOrgRegNumber: 'S', recipientOrgRegNumber: 'R' });
    expect(parseMessage(json, 'json')).toEqual({
      state: 'ok',
      type: 'ArchiveTransfer',
      status: 'processed',
      date: '2024-02-03T04:05:06.000Z',
      reference: 'J-1',
      sender: 'S',
      recipient: 'R',
    });
  });

  it('reads the element form { "ArchiveRestitution": { … } }', () => {
    const json = JSON.stringify({ ArchiveRestitution: { Date: '2024-02-03', MessageIdentifier: 'E-1', ArchivalAgency: { Identifier: 'A' }, OriginatingAgency: { Identifier: 'O' } } });
    expect(parseMessage(json, 'json')).toMatchObject({ state: 'ok', type: 'ArchiveRestitution', reference: 'E-1', sender: 'A', recipient: 'O' });
  });

  it('says why JSON is unparseable or unknown', () => {
    expect(parseMessage('{"type": ', 'json').reason).toMatch(/^not valid JSON: /);
    expect(parseMessage('[1,2]', 'json').reason).toBe('the JSON is not an object');
    expect(parseMessage('{"type":"Memo"}', 'json')).toMatchObject({ state: 'unknown', type: 'Memo', reason: "'Memo' is not a known Medona message type" });
    expect(parseMessage('{"a":1,"b":2}', 'json')).toMatchObject({ state: 'unknown' });
  });
});

describe('the directory layout', () => {
  it('gives top-level files to the message whose folder is their longest prefix', () => {
    const folders = new Set(['MSG-1', 'MSG-1.2']);
    expect(ownerOfTopLevelFile('MSG-1.zip', folders)).toBe('MSG-1');
    expect(ownerOfTopLevelFile('MSG-1.2.zip', folders)).toBe('MSG-1.2');
    expect(ownerOfTopLevelFile('MSG-1.2.3.tar.gz', folders)).toBe('MSG-1.2');
    expect(ownerOfTopLevelFile('LONE.xml', folders)).toBe('LONE');
  });

  it('groups folders, archives beside them and lone message files; hidden names are not messages', () => {
    const groups = groupTopLevel([
      { name: 'A', isDir: true },
      { name: 'A.zip', isDir: false },
      { name: 'A.sig', isDir: false },
      { name: 'B.xml', isDir: false },
      { name: 'B.status', isDir: false },
      { name: '.fonds.lock', isDir: false },
      { name: '.fonds-tmp-1', isDir: true },
    ]);
    expect([...groups.values()]).toEqual([
      { id: 'A', isDir: true, beside: ['A.sig', 'A.zip'] },
      { id: 'B', isDir: false, beside: ['B.status', 'B.xml'] },
    ]);
  });

  it.each([
    ['..', "the path contains '..'"],
    ['/etc', 'the path is absolute'],
    ['a/b', "a message id is a single name, without '/'"],
    ['.hidden', "a message id does not start with '.'"],
    ['a\0b', 'the path contains a NUL byte'],
    ['C:evil', 'the path is absolute'],
  ])('refuses the message id %j', (id, why) => {
    expect(unsafeMessageId(id)).toBe(why);
  });
});
