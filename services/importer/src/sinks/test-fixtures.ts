import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, expect } from 'vitest';
import type { Batch } from '@keyway/contracts';

/** A batch as the topic service hands it to a sink (fixture of the sink tests next to this file). */
export const testBatch = (seq: number, fields: Partial<Batch> = {}): Batch => ({
  id: `b-${seq}`,
  tenant: 'acme',
  topic: 'edr-events',
  seq,
  createdAt: '2024-05-06T07:08:09.123Z',
  contentType: 'application/json',
  records: [{ event: 'login' }],
  ...fields,
});

/**
 * The open flags of this process's descriptors for `path` (Linux /proc/self/fdinfo), to check how a
 * sink or the checkpoint keeps its file open.
 */
export function openFlags(path: string): number[] {
  const target = realpathSync(path);
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    let link: string;
    try {
      link = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return []; // closed meanwhile (the descriptor of readdir itself)
    }
    if (link !== target) return [];
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
    return flags === undefined ? [] : [Number.parseInt(flags, 8)];
  });
}

/**
 * An HTTPS server that answers badly, for the sinks' deadline and size cap: `silent` takes the request
 * and never answers; `trickle` answers 200 and one byte of body every 50 ms, forever; `flood` answers
 * 200 and an endless body as fast as it can.
 */
export async function badServer(tls: { cert: string; key: string }, behaviour: 'silent' | 'trickle' | 'flood') {
  let requests = 0;
  const timers = new Set<NodeJS.Timeout>();
  const server = https.createServer(tls, (req, res) => {
    requests += 1;
    req.resume();
    if (behaviour === 'silent') return;
    res.writeHead(200, { 'content-type': 'application/json' });
    if (behaviour === 'trickle') {
      const timer = setInterval(() => res.write(' '), 50);
      timers.add(timer);
      res.on('close', () => clearInterval(timer));
      return;
    }
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (!res.destroyed && res.write(chunk));
    };
    res.on('drain', pump);
    pump();
  });
  const listener = await listening(server);
  return {
    url: listener.url,
    requests: () => requests,
    close: () => {
      for (const timer of timers) clearInterval(timer);
      return listener.close();
    },
  };
}

/**
 * `server` listening on a free loopback port: its URL (named localhost, as the test certificates are)
 * and a close that also ends the connections a sink keeps alive (server.close alone waits for them).
 */
export async function listening(server: https.Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A list to push what a test opens (servers, sinks) on: all of it is closed after each test, passed or failed. */
export function closedAfterEach(): Array<{ close(): Promise<unknown> }> {
  const open: Array<{ close(): Promise<unknown> }> = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
  });
  return open;
}

/** The error a write failed with, or undefined when it succeeded. */
export const failure = (promise: Promise<unknown>): Promise<Error | undefined> =>
  promise.then(
    () => undefined,
    (err: unknown) => err as Error,
  );

/** `err` is an error whose message and stack quote none of `secrets` (they reach the agent's log). */
export function expectNoSecrets(err: Error | undefined, secrets: string[]): void {
  expect(err).toBeInstanceOf(Error);
  for (const secret of secrets) expect(`${err!.message} ${err!.stack}`).not.toContain(secret);
}
