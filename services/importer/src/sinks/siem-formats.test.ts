import { describe, expect, it } from 'vitest';
import { cefExtensionValue, cefHeaderField, cefMessage, leefMessage, leefValue } from './siem-formats.ts';
import { testBatch } from './test-fixtures.ts';

const batch = (records: unknown[], fields = {}) => testBatch(1, { records, createdAt: '2024-05-06T07:08:09.123Z', ...fields });
const TAB = '\t';

/** A CEF reader as ArcSight's: header split on unescaped `|`, extension keys found by ` key=`, values unescaped. */
function parseCef(text: string) {
  const header: string[] = [];
  let rest = text;
  for (let i = 0; i < 7; i += 1) {
    const match = /^((?:[^\\|]|\\.)*)\|/.exec(rest);
    if (!match) throw new Error(`not CEF: ${text}`);
    header.push(match[1]!.replace(/\\(.)/g, '$1'));
    rest = rest.slice(match[0].length);
  }
  const extension: Record<string, string> = {};
  for (const [, key, value] of rest.matchAll(/(\w+)=((?:[^\\=]|\\.)*?)(?= \w+=|$)/g)) {
    extension[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 'r' ? '\r' : c));
  }
  return { header, extension };
}

describe('CEF (ArcSight CEF:0)', () => {
  it('escapes | and \\ in header fields, = \\ and line breaks in extension values', () => {
    expect(cefHeaderField('a|b\\c\nd')).toBe(String.raw`a\|b\\c d`);
    expect(cefExtensionValue('x=1\\y\r\nz|w')).toBe(String.raw`x\=1\\y\r\nz|w`);
  });

  it('writes the exact bytes for tricky values, and a CEF reader gets the record back from msg', () => {
    const record = { event: 'a|b\\c', name: 'line1\nline2', severity: 'critical', note: 'x=1\r\ny', user: 'café' };
    const text = cefMessage(batch([record], { id: 'b=1\\x' }), record);
    expect(text).toBe(
      String.raw`CEF:0|Keyway|Keyway Feed|1|a\|b\\c|line1 line2|8|rt=1714979289123 cs1Label=keywayTenant cs1=acme cs2Label=keywayTopic cs2=edr-events cs3Label=keywayBatch cs3=b\=1\\x cn1Label=keywaySeq cn1=1 msg={"event":"a|b\\\\c","name":"line1\\nline2","severity":"critical","note":"x\=1\\r\\ny","user":"caf\\u00e9"}`,
    );
    const parsed = parseCef(text);
    expect(parsed.header).toEqual(['CEF:0', 'Keyway', 'Keyway Feed', '1', 'a|b\\c', 'line1 line2', '8']);
    expect(parsed.extension).toMatchObject({ rt: '1714979289123', cs1: 'acme', cs3Label: 'keywayBatch', cs3: 'b=1\\x', cn1: '1' });
    expect(JSON.parse(parsed.extension.msg!)).toEqual(record);
  });

  it('maps severity to 0–10 and names the event by the record, else by the topic', () => {
    const severity = (value: unknown) => parseCef(cefMessage(batch([]), { severity: value })).header[6];
    expect(['emerg', 'alert', 'crit', 'error', 'warning', 'notice', 'info', 'debug', 'odd', 3].map(severity)).toEqual(['10', '9', '8', '7', '5', '3', '1', '0', '1', '7']);
    expect(parseCef(cefMessage(batch([]), { type: 'ProcessStart', message: 'cmd.exe started' })).header.slice(4, 6)).toEqual(['ProcessStart', 'cmd.exe started']);
    expect(parseCef(cefMessage(batch([]), 42)).header.slice(4, 6)).toEqual(['edr-events', 'edr-events']);
  });
});

describe('LEEF (IBM QRadar LEEF:2.0)', () => {
  it('writes the tab delimiter and line breaks in values as \\t \\r \\n, and leaves \\ alone (LEEF has no escape; QRadar unescapes nothing)', () => {
    expect(leefValue('a\tb\\c\r\nd=e|f')).toBe(String.raw`a\tb\c\r\nd=e|f`);
  });

  it('keeps a Windows path byte for byte', () => {
    const record = { path: 'C:\\Users\\zoë\\AppData\\x.exe', share: '\\\\srv\\c$' };
    const message = leefMessage(batch([record]), record);
    expect(Buffer.from(message.split(TAB).slice(-2).join(TAB), 'utf8')).toEqual(Buffer.from('path=C:\x5cUsers\x5czo\xc3\xab\x5cAppData\x5cx.exe\tshare=\x5c\x5csrv\x5cc$', 'latin1'));
  });

  it('writes the exact bytes: header with the tab delimiter as x09, devTime, keyway attributes, the record’s fields', () => {
    const record = { event: 'x|y', 'src ip': '10.0.0.1', sev: 'high', note: 'tab\there\\', nested: { a: [1] }, user: 'café', severity: 'warning' };
    expect(leefMessage(batch([record]), record)).toBe(
      [
        String.raw`LEEF:2.0|Keyway|Keyway Feed|1|x\|y|x09|devTime=2024-05-06T07:08:09.123+0000`,
        `devTimeFormat=yyyy-MM-dd'T'HH:mm:ss.SSSZ`,
        'sev=5',
        'cat=edr-events',
        'keywayTenant=acme',
        'keywayTopic=edr-events',
        'keywayBatch=b-1',
        'keywaySeq=1',
        'event=x|y',
        'src_ip=10.0.0.1',
        'record.sev=high',
        'note=tab\\there\\',
        'nested={"a":[1]}',
        'user=café',
        'severity=warning',
      ].join(TAB),
    );
  });

  it('maps severity to LEEF’s sev 1–10', () => {
    const sev = (value: string) => leefMessage(batch([]), { severity: value }).split(TAB)[2];
    expect(['emerg', 'error', 'warning', 'info', 'debug'].map(sev)).toEqual(['sev=10', 'sev=7', 'sev=5', 'sev=1', 'sev=1']);
  });

  it('puts a record that is not an object into `record` as JSON', () => {
    expect(leefMessage(batch([]), ['a', 1]).split(TAB).at(-1)).toBe('record=["a",1]');
  });
});
