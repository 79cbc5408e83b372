import { hostname as osHostname } from 'node:os';
import net, { isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import type { Batch } from '@keyway/contracts';
import { asciiJson, cefMessage, leefMessage, severityOf, type SyslogFormat } from './siem-formats.ts';
import type { Sink } from './sink.ts';

/** RFC 5424 §6.2.1 Table 1, by the names syslog.conf uses. */
export const FACILITIES = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  ntp: 12,
  audit: 13,
  alert: 14,
  clock: 15,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
} as const;

/**
 * SD-ID of our structured data: `name@<private enterprise number>` (RFC 5424 §7.2.2). 32473 is the
 * number RFC 5612 reserves for documentation; a deployment that registers its own PEN changes it here.
 */
export const SD_ID = 'keyway@32473';
const APP_NAME = 'keyway';
const NILVALUE = '-';

export interface SyslogSinkOptions {
  /** `tcp://host:port` (RFC 6587) or `tls://host:port` (RFC 5425) */
  url: string;
  /** PEM CA(s) the server's certificate chains to (TLS); default: Node's bundled CAs */
  ca?: string;
  /** PEM client certificate and key, for a server that asks for one (TLS) */
  cert?: string;
  key?: string;
  /** RFC 5424 facility 0–23; default 16 (local0) */
  facility?: number;
  /** what each message's MSG is: the record as JSON (default), CEF or LEEF */
  format?: SyslogFormat;
  /** HOSTNAME field; default os.hostname() */
  hostname?: string;
  connectTimeoutMs?: number;
  /** a write the socket has not taken within this time fails (the server stopped reading) */
  writeTimeoutMs?: number;
}

interface Target {
  secure: boolean;
  host: string;
  port: number;
}

function parseSyslogUrl(url: string): Target {
  const parsed = new URL(url);
  if (parsed.protocol !== 'tcp:' && parsed.protocol !== 'tls:') throw new Error(`syslog URL must be tcp://host:port or tls://host:port, not ${parsed.protocol}`);
  if (!parsed.hostname || !parsed.port) throw new Error('syslog URL needs a host and a port');
  return { secure: parsed.protocol === 'tls:', host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(parsed.port) };
}

/** RFC 5424 §6.3.3: inside PARAM-VALUE, '"', '\' and ']' MUST be escaped with a backslash. */
export const escapeParamValue = (value: string) => value.replace(/["\\\]]/g, (c) => `\\${c}`);

/** PRINTUSASCII only (RFC 5424 §6), at most `max` characters, NILVALUE when nothing is left. */
const headerField = (value: string, max: number) => value.replace(/[^\x21-\x7e]/g, '').slice(0, max) || NILVALUE;

/**
 * One RFC 5424 message for one record:
 * `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG`, TIMESTAMP the batch's
 * creation time (RFC 3339 in UTC with milliseconds, §6.2.3), MSGID the topic.
 * - `rfc5424-json`: STRUCTURED-DATA `[keyway@32473 tenant=… topic=… batch=… seq=…]`, MSG the record as
 *   JSON with every non-ASCII character written as a \u escape: plain ASCII is a valid MSG-ANY, so no
 *   BOM is needed (§6.4) and a SIEM's JSON parser reads the MSG as it is.
 * - `cef`, `leef`: STRUCTURED-DATA `-` (the keyway fields are in the CEF extension or the LEEF
 *   attributes) and MSG the CEF or LEEF event, UTF-8 without a BOM (a MSG-ANY, §6.4), because
 *   ArcSight and QRadar look for `CEF:` / `LEEF:` right after the syslog header.
 */
export function formatMessage(batch: Batch, record: unknown, options: { facility: number; hostname: string; procId: string; format?: SyslogFormat }): string {
  const pri = options.facility * 8 + severityOf(record);
  const header = [`<${pri}>1`, new Date(batch.createdAt).toISOString(), headerField(options.hostname, 255), APP_NAME, headerField(options.procId, 128), headerField(batch.topic, 32)];
  switch (options.format ?? 'rfc5424-json') {
    case 'rfc5424-json': {
      const sd = `[${SD_ID} tenant="${escapeParamValue(batch.tenant)}" topic="${escapeParamValue(batch.topic)}" batch="${escapeParamValue(batch.id)}" seq="${batch.seq}"]`;
      return [...header, sd, asciiJson(record)].join(' ');
    }
    case 'cef':
      return [...header, NILVALUE, cefMessage(batch, record)].join(' ');
    case 'leef':
      return [...header, NILVALUE, leefMessage(batch, record)].join(' ');
  }
}

/** RFC 6587 §3.4.1 octet counting (also RFC 5425 §4.3): `MSG-LEN SP SYSLOG-MSG`, the length in octets. */
function frame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

const MAX_BACKOFF_MS = 30_000;

/**
 * Syslog over TCP or TLS, one message per record (a SIEM indexes records, not batches), the
 * records of a batch written in one go.
 *
 * Durability: plain syslog has no application-level acknowledgment (RFC 6587, RFC 5425), so a batch
 * counts as durable once the socket's write callback fired (the kernel took every byte) and the
 * connection is still up. If the connection is lost, times out or fails before that, write()
 * rejects: the agent abandons the batch and it is delivered again (at least once; a server that
 * received part of the batch sees those records twice, told apart by `batch` and `seq` in the
 * structured data). The next write reconnects; after a failed attempt, attempts wait an
 * exponential backoff (up to 30 s), and writes in that window fail at once.
 */
export function syslogSink(options: SyslogSinkOptions): Sink {
  const target = parseSyslogUrl(options.url);
  const facility = options.facility ?? FACILITIES.local0;
  if (!Number.isInteger(facility) || facility < 0 || facility > 23) throw new Error('syslog facility must be 0-23');
  const format = { facility, hostname: options.hostname ?? osHostname(), procId: String(process.pid), format: options.format ?? 'rfc5424-json' } as const;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const writeTimeoutMs = options.writeTimeoutMs ?? 30_000;
  const where = `${target.host}:${target.port}`;

  let socket: Socket | undefined;
  let failedAttempts = 0;
  let retryAt = 0;

  const open = () =>
    new Promise<Socket>((resolve, reject) => {
      const s = target.secure
        ? tls.connect({
            host: target.host,
            port: target.port,
            // RFC 5425 §5.2: the server is authorized by its certificate and name; SNI carries DNS names only (RFC 6066 §3).
            servername: isIP(target.host) ? undefined : target.host,
            ca: options.ca,
            cert: options.cert,
            key: options.key,
            minVersion: 'TLSv1.2',
          })
        : net.connect({ host: target.host, port: target.port });
      const ready = target.secure ? 'secureConnect' : 'connect';
      const timer = setTimeout(() => s.destroy(new Error(`syslog ${where}: no connection within ${connectTimeoutMs} ms`)), connectTimeoutMs);
      const failed = (err: Error) => {
        clearTimeout(timer);
        s.off(ready, succeeded);
        reject(err);
      };
      const succeeded = () => {
        clearTimeout(timer);
        s.off('error', failed);
        // Errors reach the write in flight through its callback or 'close'; this keeps them from crashing the process.
        s.on('error', () => undefined);
        s.setNoDelay(true);
        s.setKeepAlive(true, 30_000);
        // A syslog server sends nothing; reading anyway is how its FIN ('end') is noticed while idle.
        s.resume();
        s.on('end', () => s.destroy());
        resolve(s);
      };
      s.once('error', failed);
      s.once(ready, succeeded);
    });

  async function connected(): Promise<Socket> {
    if (socket && !socket.destroyed && socket.writable) return socket;
    const waitMs = retryAt - Date.now();
    if (waitMs > 0) throw new Error(`syslog ${where} unreachable; next attempt in ${waitMs} ms`);
    let s: Socket;
    try {
      s = await open();
    } catch (err) {
      failedAttempts += 1;
      retryAt = Date.now() + Math.min(250 * 2 ** (failedAttempts - 1), MAX_BACKOFF_MS);
      throw err;
    }
    failedAttempts = 0;
    socket = s;
    return s;
  }

  const send = (s: Socket, data: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        cleanup();
        s.destroy();
        reject(err);
      };
      const lost = () => fail(new Error(`syslog ${where}: connection lost before the batch was written`));
      const timer = setTimeout(() => fail(new Error(`syslog ${where}: write not taken within ${writeTimeoutMs} ms`)), writeTimeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        s.off('close', lost);
      };
      s.once('close', lost);
      s.write(data, (err) => {
        if (err) return fail(err);
        // The callback can come after the peer reset the connection: only a live socket counts.
        if (s.destroyed || !s.writable) return lost();
        cleanup();
        resolve();
      });
    });

  let queue: Promise<void> = Promise.resolve();
  return {
    description: `syslog ${target.secure ? 'tls' : 'tcp'}://${where} (RFC 5424, ${format.format}, one message per record)`,
    write(batch) {
      const data = Buffer.concat(batch.records.map((record) => frame(formatMessage(batch, record, format))));
      const next = queue.then(async () => {
        if (data.length === 0) return;
        await send(await connected(), data);
      });
      queue = next.catch(() => undefined);
      return next;
    },
    async close() {
      await queue;
      const s = socket;
      socket = undefined;
      if (!s || s.destroyed) return;
      // end() flushes what is buffered and sends FIN; a server that never closes its side is cut off.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => s.destroy(), 5_000);
        s.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        s.end();
      });
    },
  };
}
