import { request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDevCa, issueServiceCert, staticTls, type TlsSource } from '@keyway/tls';
import { abortOnDrain, holdDrain, isDraining, listenHttps, type RunningServer } from './https.ts';

let tls: TlsSource;
let caPem: string;
let server: RunningServer | undefined;

beforeAll(() => {
  const ca = createDevCa();
  caPem = ca.certPem;
  tls = staticTls({ ...issueServiceCert(ca, 'topic'), caPem });
});
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** one GET on a connection of its own: status, Connection header and body, or the error that cut it */
const get = (path: string) =>
  new Promise<{ status?: number; connection?: string; body?: string; error?: string }>((resolve) => {
    const req = request(`${server!.url}${path}`, { ca: caPem, agent: false }, (res: IncomingMessage) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, body }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('error', (err) => resolve({ error: err.message }));
    req.end();
  });

describe('RunningServer.drain', () => {
  it('leaves at once and keeps serving (each answer closing its connection); ends long waits after the delay; waits for holds', async () => {
    let release: (() => void) | undefined;
    server = await listenHttps(
      (req, res) => {
        if (req.url === '/ready') res.end(isDraining(req) ? 'draining' : 'ready');
        else if (req.url === '/hold') {
          release = holdDrain(req);
          res.end('held');
        } else if (req.url === '/wait') {
          const ended = new AbortController();
          const stop = abortOnDrain(req, ended);
          ended.signal.addEventListener('abort', () => {
            stop();
            res.end('told to end');
          });
        }
      },
      tls,
      0,
    );
    expect((await get('/ready')).body).toBe('ready');
    expect((await get('/hold')).body).toBe('held');
    const waiting = get('/wait');
    await sleep(100);

    let drained = false;
    const draining = server.drain({ delayMs: 500, graceMs: 10_000 }).then(() => {
      drained = true;
    });
    const leaving = await get('/ready');
    expect(leaving).toMatchObject({ status: 200, body: 'draining', connection: 'close' });
    // the delay: the long wait is not told yet
    await sleep(200);
    expect(await Promise.race([waiting, sleep(10).then(() => 'still waiting')])).toBe('still waiting');
    expect(await waiting).toMatchObject({ body: 'told to end' });

    // no request in flight, but the hold keeps the listener serving
    await sleep(300);
    expect(drained).toBe(false);
    expect((await get('/ready')).body).toBe('draining');
    release!();
    await draining;
    expect((await get('/ready')).error).toMatch(/ECONNREFUSED/);
  });

  it('cuts what is still open at the bound', async () => {
    server = await listenHttps(() => undefined, tls, 0);
    const stuck = get('/never');
    await sleep(100);
    const started = Date.now();
    await server.drain({ delayMs: 0, graceMs: 500 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(Date.now() - started).toBeLessThan(3000);
    expect((await stuck).error).toBeDefined();
  });
});
