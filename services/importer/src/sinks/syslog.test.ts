import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createEphemeralPki, type DevPki } from '@keyway/tls';
import { cefMessage, leefMessage } from './siem-formats.ts';
import { escapeParamValue, formatMessage, SD_ID, syslogSink } from './syslog.ts';
import { testBatch } from './test-fixtures.ts';

// +02:00: the RFC 5424 TIMESTAMP is written in UTC (05:08:09.123Z)
const batch = (seq: number, records: unknown[]) => testBatch(seq, { records, createdAt: '2024-05-06T07:08:09.123+02:00' });

/** RFC 6587 §3.4.1 receiver: `MSG-LEN SP SYSLOG-MSG`, repeated; refuses anything else. */
function octetCountedFrames(onFrame: (message: Buffer) => void) {
  let buffer = Buffer.alloc(0);
  return (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const space = buffer.indexOf(0x20);
      if (space < 0) return;
      const header = buffer.subarray(0, space).toString('ascii');
      if (!/^[1-9]\d*$/.test(header)) throw new Error(`not an octet count: ${JSON.stringify(header)}`);
      const length = Number(header);
      if (buffer.length < space + 1 + length) return;
      onFrame(buffer.subarray(space + 1, space + 1 + length));
      buffer = buffer.subarray(space + 1 + length);
    }
  };
}

/** RFC 5424 §6: HEADER SP STRUCTURED-DATA SP MSG, with our one SD-ELEMENT or none (-), SD-PARAM values unescaped (§6.3.3). */
const RFC5424 = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) (?:\[(\S+)((?: [^=\s]+="(?:[^"\\\]]|\\["\\\]])*")*)\]|-) (.*)$/s;
function parse(message: Buffer) {
  const text = message.toString('utf8');
  const match = RFC5424.exec(text);
  if (!match) throw new Error(`not RFC 5424: ${text}`);
  const [, pri, timestamp, hostname, appName, procId, msgId, sdId, params, msg] = match as unknown as string[];
  const sd: Record<string, string> = {};
  for (const [, name, value] of (params ?? '').matchAll(/ ([^=\s]+)="((?:[^"\\\]]|\\["\\\]])*)"/g)) sd[name!] = value!.replace(/\\(["\\\]])/g, '$1');
  return { pri: Number(pri), timestamp, hostname, appName, procId, msgId, sdId, sd, msg: msg!, raw: message };
}
type Parsed = ReturnType<typeof parse>;

interface Receiver {
  url: string;
  messages: Parsed[];
  connections: Socket[];
  /** resolves once `count` messages have arrived */
  received(count: number): Promise<void>;
  close(): Promise<void>;
}

async function receiver(secure: false | { pki: DevPki }, onConnection?: (socket: Socket, index: number) => boolean): Promise<Receiver> {
  const messages: Parsed[] = [];
  const connections: Socket[] = [];
  let waiting: Array<{ count: number; resolve: () => void }> = [];
  const handle = (socket: Socket) => {
    const index = connections.push(socket) - 1;
    socket.on('error', () => undefined);
    if (onConnection?.(socket, index)) return;
    const feed = octetCountedFrames((frame) => {
      messages.push(parse(frame));
      waiting = waiting.filter((w) => {
        if (messages.length < w.count) return true;
        w.resolve();
        return false;
      });
    });
    socket.on('data', feed);
  };
  const server = secure
    ? tls.createServer({ cert: secure.pki.certs.server!.certPem, key: secure.pki.certs.server!.keyPem, ca: secure.pki.ca.certPem, requestCert: true, rejectUnauthorized: true }, handle)
    : net.createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${secure ? 'tls' : 'tcp'}://${secure ? 'localhost' : '127.0.0.1'}:${port}`,
    messages,
    connections,
    received: (count) => (messages.length >= count ? Promise.resolve() : new Promise((resolve) => waiting.push({ count, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of connections) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let pki: DevPki;
beforeAll(() => {
  pki = createEphemeralPki(['server', 'client']);
});
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

describe('syslog sink (RFC 5424 over TCP, RFC 6587 octet counting)', () => {
  it('sends one RFC 5424 message per record: PRI from facility and severity, header fields, structured data, the record as JSON', async () => {
    const server = await receiver(false);
    open.push(server);
    const sink = syslogSink({ url: server.url, hostname: 'agent-1.example', facility: 16 });
    open.push(sink);
    const records = [{ event: 'login', severity: 'error' }, { event: 'café ☕ "quoted" \\ ] 😀' }, { event: 'x', severity: 4 }];
    await sink.write(batch(7, records));
    await server.received(3);

    const [first, second, third] = server.messages as [Parsed, Parsed, Parsed];
    expect(first.pri).toBe(16 * 8 + 3); // local0.err
    expect(second.pri).toBe(16 * 8 + 6); // no severity: informational
    expect(third.pri).toBe(16 * 8 + 4); // a numeric severity as it is
    expect(first).toMatchObject({
      timestamp: '2024-05-06T05:08:09.123Z',
      hostname: 'agent-1.example',
      appName: 'keyway',
      procId: String(process.pid),
      msgId: 'edr-events',
      sdId: SD_ID,
      sd: { tenant: 'acme', topic: 'edr-events', batch: 'b-7', seq: '7' },
    });
    expect(server.messages.map((m) => JSON.parse(m.msg) as unknown)).toEqual(records);
    // MSG is plain ASCII JSON (non-ASCII as \u escapes), so it needs no BOM (RFC 5424 §6.4).
    for (const m of server.messages) expect(m.raw.every((byte) => byte >= 0x20 && byte < 0x7f)).toBe(true);
  });

  it('writes CEF or LEEF as the MSG (SYSLOG_FORMAT), with no structured data and the same framing', async () => {
    const server = await receiver(false);
    open.push(server);
    const record = { event: 'login', severity: 'error', user: 'zoë' };
    for (const format of ['cef', 'leef'] as const) {
      const sink = syslogSink({ url: server.url, hostname: 'agent-1.example', facility: 16, format });
      open.push(sink);
      await sink.write(batch(7, [record]));
    }
    await server.received(2);
    const [cef, leef] = server.messages as [Parsed, Parsed];
    const header = `<${16 * 8 + 3}>1 2024-05-06T05:08:09.123Z agent-1.example keyway ${process.pid} edr-events -`;
    expect(cef.raw.toString('utf8')).toBe(`${header} ${cefMessage(batch(7, [record]), record)}`);
    expect(leef.raw.toString('utf8')).toBe(`${header} ${leefMessage(batch(7, [record]), record)}`);
    expect(cef.msg).toMatch(/^CEF:0\|Keyway\|Keyway Feed\|1\|login\|login\|7\|rt=1714972089123 cs1Label=keywayTenant cs1=acme /);
    expect(leef.msg).toMatch(/^LEEF:2\.0\|Keyway\|Keyway Feed\|1\|login\|x09\|devTime=2024-05-06T05:08:09\.123\+0000\t/);
    // UTF-8 as it is, with no BOM before CEF: / LEEF: (RFC 5424 MSG-ANY)
    expect(leef.raw.includes(Buffer.from('user=zoë', 'utf8'))).toBe(true);
    expect(cef.sdId).toBeUndefined();
  });

  it('escapes ", \\ and ] in SD-PARAM values (RFC 5424 §6.3.3), so a parser gets the values back', () => {
    expect(escapeParamValue('a"b\\c]d')).toBe('a\\"b\\\\c\\]d');
    const odd = { ...batch(1, []), tenant: 'te"n]ant', id: 'id\\x' };
    const parsed = parse(Buffer.from(formatMessage(odd, { a: 1 }, { facility: 1, hostname: 'h', procId: '9' })));
    expect(parsed.sd).toMatchObject({ tenant: 'te"n]ant', batch: 'id\\x' });
    expect(parsed.pri).toBe(8 + 6);
  });

  it('rejects the batch in flight when the server drops the connection, and the next write reconnects', async () => {
    // The first connection is never read, then reset; the ones after it are served.
    const server = await receiver(false, (socket, index) => {
      if (index > 0) return false;
      socket.pause();
      setTimeout(() => socket.resetAndDestroy(), 300);
      return true;
    });
    open.push(server);
    const sink = syslogSink({ url: server.url });
    open.push(sink);
    // Far more than loopback socket buffers hold, so the write is still in flight when the reset comes.
    const big = batch(
      1,
      Array.from({ length: 96 }, (_, i) => ({ i, blob: 'x'.repeat(256 * 1024) })),
    );
    await expect(sink.write(big)).rejects.toThrow();

    await sink.write(batch(2, [{ event: 'after the reset' }]));
    await server.received(1);
    expect(server.connections).toHaveLength(2);
    expect(JSON.parse(server.messages[0]!.msg)).toEqual({ event: 'after the reset' });
  });

  it('notices a server that closed an idle connection and writes the next batch on a new one', async () => {
    const server = await receiver(false);
    open.push(server);
    const sink = syslogSink({ url: server.url });
    open.push(sink);
    await sink.write(batch(1, [{ n: 1 }]));
    await server.received(1);
    server.connections[0]!.end();
    await new Promise((r) => setTimeout(r, 100));
    await sink.write(batch(2, [{ n: 2 }]));
    await server.received(2);
    expect(server.connections).toHaveLength(2);
  });

  it('rejects when nobody listens, and fails fast while backing off', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const sink = syslogSink({ url: `tcp://127.0.0.1:${port}` });
    await expect(sink.write(batch(1, [{}]))).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(sink.write(batch(1, [{}]))).rejects.toThrow(/next attempt in/);
    await sink.close();
  });
});

describe('syslog sink over TLS (RFC 5425)', () => {
  it('verifies the server against the configured CA, presents the client certificate, and frames the same way', async () => {
    const server = await receiver({ pki });
    open.push(server);
    const sink = syslogSink({ url: server.url, ca: pki.ca.certPem, cert: pki.certs.client!.certPem, key: pki.certs.client!.keyPem });
    open.push(sink);
    await sink.write(batch(3, [{ event: 'over tls', severity: 'warning' }]));
    await server.received(1);
    expect(server.messages[0]).toMatchObject({ pri: 16 * 8 + 4, sd: { batch: 'b-3' } });
    const peer = (server.connections[0] as tls.TLSSocket).getPeerCertificate();
    expect(peer.subject.CN).toBe('client');
  });

  it('refuses a server whose certificate does not chain to the CA', async () => {
    const server = await receiver({ pki });
    open.push(server);
    const sink = syslogSink({ url: server.url, ca: createEphemeralPki([]).ca.certPem });
    await expect(sink.write(batch(1, [{}]))).rejects.toMatchObject({ code: expect.stringMatching(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/) });
    await sink.close();
    expect(server.messages).toHaveLength(0);
  });
});
