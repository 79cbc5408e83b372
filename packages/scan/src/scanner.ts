import net from 'node:net';
import { type ClamdAddress, ScannerOptions, type ScannerOptionsInput } from './config.ts';
import { ScanFailed, ScannerUnavailable } from './errors.ts';
import { type ClamdVersion, type Verdict, verdictOf, versionOf } from './reply.ts';

/** INSTREAM ends with a zero-length chunk (clamd's man page: "<length><data>… terminated by a zero-length chunk") */
const END_OF_STREAM = Buffer.alloc(4);
/** clamd's answers are one short line; this much without its NUL is not clamd */
const MAX_REPLY_BYTES = 4096;

export interface Scanner {
  /**
   * Streams `source` to clamd (INSTREAM), one chunk at a time: the next is read only once the socket
   * takes more, so memory stays flat whatever the size. Resolves only with clamd's verdict on the whole
   * stream; anything else rejects (ScannerUnavailable, ScanFailed, or the source's own error), never "clean".
   */
  scan(source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>): Promise<Verdict>;
  /** PING → PONG: for readiness; rejects like scan */
  ping(): Promise<void>;
  version(): Promise<ClamdVersion>;
}

export function createScanner(input: ScannerOptionsInput): Scanner {
  const options = ScannerOptions.parse(input);
  const command = async (name: string): Promise<string> => {
    const talk = converse(options.address, options.commandTimeoutMs, name);
    try {
      return await talk.reply;
    } finally {
      talk.close();
    }
  };
  return {
    async scan(source) {
      const talk = converse(options.address, options.timeoutMs, 'INSTREAM');
      try {
        let total = 0;
        for await (const chunk of source) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          // a zero-length chunk would end the stream here, and clamd would judge only what came before
          if (bytes.length === 0) continue;
          total += bytes.length;
          if (total > options.maxStreamBytes) throw new ScanFailed('ERR_SCAN_SIZE_LIMIT', `the stream is longer than ${options.maxStreamBytes} bytes (clamd's StreamMaxLength)`);
          const length = Buffer.allocUnsafe(4);
          length.writeUInt32BE(bytes.length);
          await talk.send(length, bytes);
          // clamd answered before the end (an error, e.g. its size limit): it reads no more
          if (talk.done()) break;
        }
        const complete = !talk.done();
        if (complete) await talk.send(END_OF_STREAM);
        return verdictOf(await talk.reply, complete);
      } finally {
        talk.close();
      }
    },
    async ping() {
      const reply = await command('PING');
      if (reply !== 'PONG') throw new ScanFailed('ERR_SCAN_REPLY', `not an answer clamd gives to PING: ${JSON.stringify(reply.slice(0, 200))}`);
    },
    async version() {
      return versionOf(await command('VERSION'));
    },
  };
}

interface Conversation {
  /** clamd's first answer, without its NUL; rejects when the connection fails, ends or stays silent before one */
  reply: Promise<string>;
  /** whether the answer (or the failure) is in: clamd reads no more */
  done(): boolean;
  /** writes the parts; resolves once the socket takes more (backpressure) or the conversation is over */
  send(...parts: Uint8Array[]): Promise<void>;
  close(): void;
}

/**
 * One command on a fresh connection, in clamd's NUL-delimited form (`z<COMMAND>\0`, answers end with
 * NUL). `timeoutMs` is the longest silence: no byte taken from us and no answer.
 */
function converse(address: ClamdAddress, timeoutMs: number, command: string): Conversation {
  const where = 'path' in address ? address.path : `${address.host}:${address.port}`;
  const socket = net.connect(address);
  socket.setTimeout(timeoutMs);
  let connected = false;
  let settled = false;
  let received = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let answer: (reply: string) => void = () => undefined;
  let fail: (err: Error) => void = () => undefined;
  const reply = new Promise<string>((resolve, reject) => {
    answer = resolve;
    fail = reject;
  });
  // A caller that stops early (its source failed) never awaits the answer; the rejection is theirs to ignore.
  reply.catch(() => undefined);
  const settle = (outcome: string | Error) => {
    if (settled) return;
    settled = true;
    if (typeof outcome === 'string') answer(outcome);
    else fail(outcome);
    wake?.();
  };

  socket.on('connect', () => {
    connected = true;
  });
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const end = received.indexOf(0);
    if (end >= 0) settle(received.subarray(0, end).toString('utf8'));
    else if (received.length > MAX_REPLY_BYTES) settle(new ScanFailed('ERR_SCAN_REPLY', `clamd at ${where} sent ${received.length} bytes without ending its answer`));
  });
  socket.on('end', () => {
    // an answer without its NUL is not one: "stream: OK" cut short must not pass as clean
    if (received.length > 0) settle(new ScanFailed('ERR_SCAN_REPLY', `clamd's answer ended without its NUL: ${JSON.stringify(received.subarray(0, 200).toString('utf8'))}`));
  });
  socket.on('timeout', () => {
    settle(new ScannerUnavailable('ERR_SCANNER_TIMEOUT', `clamd at ${where} was silent for ${timeoutMs} ms`));
    socket.destroy();
  });
  socket.on('error', (err) => {
    settle(
      connected
        ? new ScannerUnavailable('ERR_SCANNER_DISCONNECTED', `the connection to clamd at ${where} failed before it answered: ${err.message}`, { cause: err })
        : new ScannerUnavailable('ERR_SCANNER_UNREACHABLE', `clamd at ${where} cannot be reached: ${err.message}`, { cause: err }),
    );
  });
  socket.on('close', () => settle(new ScannerUnavailable('ERR_SCANNER_DISCONNECTED', `clamd at ${where} closed the connection before it answered`)));
  socket.on('drain', () => wake?.());
  socket.write(`z${command}\0`);

  return {
    reply,
    done: () => settled,
    send(...parts) {
      if (settled) return Promise.resolve();
      socket.cork();
      let more = true;
      for (const part of parts) more = socket.write(part);
      socket.uncork();
      if (more) return Promise.resolve();
      return new Promise<void>((resolve) => {
        wake = () => {
          wake = undefined;
          resolve();
        };
      });
    },
    close: () => socket.destroy(),
  };
}
