/** Reading Medona and SEDA 2.x messages: what the index keeps, and why a message could not be read. */
import { describe, expect, it } from 'vitest';
import { groupTopLevel, ownerOfTopLevelFile, unsafeMessageId } from '../../src-main/service/messages/directory';
import { buildMedonaXml, parseMessage, prettyPrint } from '../../src-main/service/messages/parse';

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
    expect(parseMessage('<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', 'xml').reason).toBe('the XML declares entities (<!ENTITY>); refused');
    expect(parseMessage('\u0000\u0001binary', 'xml').state).toBe('unparseable');
  });

  it('notes a missing or wrong Date (the index then uses the file time)', () => {
    expect(parseMessage('<ArchiveTransfer xmlns="org:afnor:medona:1.0"/>', 'xml')).toMatchObject({
      state: 'ok',
      reason: 'no Date element: the file modification time is used',
    });
    expect(parseMessage('<ArchiveTransfer xmlns="org:afnor:medona:1.0"><Date>yesterday</Date></ArchiveTransfer>', 'xml').reason).toBe(
      "Date 'yesterday' is not a date: the file modification time is used",
    );
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
