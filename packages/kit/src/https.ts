import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { serviceInTrustDomain, type TlsMaterial, type TlsSource } from '@keyway/tls';

export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  /** stops at once: the listener and every connection, requests in flight cut */
  close(): Promise<void>;
  /**
   * Stops as a load balancer needs it. At once: readiness answers 503, and every answer from now on
   * closes its connection, so pooled clients reconnect elsewhere; the listener keeps serving. After
   * `delayMs` (time for the load balancer to notice): long polls and streams are told to end with
   * what they have (abortOnDrain); once no request is in flight and nothing holds the drain
   * (holdDrain), or `graceMs` later, the listener
   * and the idle connections close, and whatever is still open at `graceMs` is cut.
   */
  drain(bounds: { delayMs: number; graceMs: number }): Promise<void>;
}

/**
 * How long a connection may take over each phase, and how many one source may hold (issue 9: TLS
 * connections that never sent a request were never closed). None of these bounds the answer: a long
 * poll (up to 60 s) or a stream (up to 300 s) is answered after its request was read in full, and
 * Node's request timeout ends at the request's last byte.
 */
export interface ListenerLimits {
  /** TLS handshake, from the TCP connection (tls.Server handshakeTimeout) */
  handshakeTimeoutMs: number;
  /** from the handshake (or the previous answer) to the end of the request header; a connection that sends no request is closed after it */
  headersTimeoutMs: number;
  /** from the handshake to the request's last body byte */
  requestTimeoutMs: number;
  /** an idle keep-alive connection, after an answer, is closed after this */
  keepAliveTimeoutMs: number;
  /** open connections one remote address may hold (TLS handshakes included); beyond it new ones are destroyed at once. 0: no cap */
  maxConnectionsPerSource: number;
}

export const DEFAULT_LISTENER_LIMITS: ListenerLimits = {
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 15_000,
  requestTimeoutMs: 30_000,
  // Above the 60 s idle timeout of common load balancers, so they close first (no reset on reuse).
  keepAliveTimeoutMs: 65_000,
  maxConnectionsPerSource: 256,
};

/** `::ffff:10.0.0.1` and `10.0.0.1` are one source. */
const sourceOf = (socket: Socket) => (socket.remoteAddress ?? 'unknown').replace(/^::ffff:/, '');

/** The service each verified peer certificate names (its SPIFFE ID) and until when, per connection: set by serveTls. */
const peers = new WeakMap<Socket, { service: string; notAfter: number }>();

/**
 * The service a connection's verified client certificate names in the listener's trust domain, or
 * undefined. Only until the certificate expires: a kept-alive connection does not stretch a
 * short-lived certificate's life.
 */
export function peerService(socket: Socket): string | undefined {
  const peer = peers.get(socket);
  return peer && Date.now() < peer.notAfter ? peer.service : undefined;
}

/** The state of the listener each request came in on (listenHttps). */
interface ListenerState {
  /** set at SIGTERM: readiness answers 503 */
  leaving: boolean;
  /** aborted once the drain starts: long polls and streams end */
  draining: AbortController;
  /** keeps the drain waiting (within its bound) until the returned function is called */
  hold(): () => void;
}
const listenerOf = new WeakMap<IncomingMessage, ListenerState>();

/** Whether the listener `req` came in on is leaving (RunningServer.drain): /readyz answers 503. */
export const isDraining = (req: IncomingMessage): boolean => listenerOf.get(req)?.leaving === true;

/**
 * Keeps the drain of the listener `req` came in on waiting (within its bound) until the returned
 * function is called, as a request in flight does: for what a request handed out and later requests
 * finish, such as a batch locked for its receiver until it is settled here.
 */
export const holdDrain = (req: IncomingMessage): (() => void) => listenerOf.get(req)?.hold() ?? (() => undefined);

/**
 * Aborts `controller` once the listener `req` came in on starts draining (at once if it is), so a
 * long poll or a stream ends with what it has rather than be cut; call the returned function when
 * the request is done.
 */
export function abortOnDrain(req: IncomingMessage, controller: AbortController): () => void {
  const signal = listenerOf.get(req)?.draining.signal;
  if (!signal) return () => undefined;
  const abort = () => controller.abort();
  if (signal.aborted) abort();
  else signal.addEventListener('abort', abort, { once: true });
  return () => signal.removeEventListener('abort', abort);
}

/** Secure-context options of a listener for `material`. */
export const serverTlsOptions = (material: TlsMaterial) => ({ cert: material.certPem, key: material.keyPem, ca: material.caPem, minVersion: 'TLSv1.2' as const });

/**
 * What makes an HTTPS server a Keyway listener, in one place for listenHttps and the dev composition:
 * - each connection's caller identity: a client certificate that chains to the CA bundle
 *   (`authorized`) and names spiffe://<trust domain>/<service> as its one URI SAN; anything else,
 *   whatever its CN, is nobody (service-auth.ts);
 * - new material from `tls` replaces the secure context for new connections (open ones keep theirs);
 *   a context that cannot be built keeps the old one (logged by the source).
 */
export function serveTls(server: Server, tls: TlsSource): void {
  // prepended: set before the HTTP layer can see a request on the connection
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (!socket.authorized) return;
    const certificate = socket.getPeerCertificate();
    const service = serviceInTrustDomain(certificate.subjectaltname, tls.trustDomain);
    if (service) peers.set(socket, { service, notAfter: Date.parse(certificate.valid_to) });
  });
  const unsubscribe = tls.onChange((material) => server.setSecureContext(serverTlsOptions(material)));
  server.once('close', unsubscribe);
}

/**
 * HTTPS only, TLS 1.2+. Client certificates are requested but not required at the TLS layer so one
 * listener serves both mTLS service callers and bearer-token callers; routes decide (service-auth.ts).
 * The certificate and CA bundle follow `tls` as it changes (serveTls).
 */
export async function listenHttps(app: RequestListener, tls: TlsSource, port: number, host = '127.0.0.1', limits: Partial<ListenerLimits> = {}): Promise<RunningServer> {
  const bounds = { ...DEFAULT_LISTENER_LIMITS, ...limits };
  const server = createServer(
    {
      ...serverTlsOptions(tls.current()),
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: bounds.handshakeTimeoutMs,
      // How often Node checks the header and request timeouts of requests in progress (default 30 s).
      connectionsCheckingInterval: Math.min(1000, bounds.headersTimeoutMs),
    },
    app,
  );
  serveTls(server, tls);
  server.headersTimeout = bounds.headersTimeoutMs;
  server.requestTimeout = bounds.requestTimeoutMs;
  server.keepAliveTimeout = bounds.keepAliveTimeoutMs;
  limitConnectionsPerSource(server, bounds.maxConnectionsPerSource);
  closeConnectionsWithoutRequest(server, bounds.headersTimeoutMs);
  const listener = trackRequests(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const actual = (server.address() as AddressInfo).port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return {
    url: `https://${hostForUrl === '127.0.0.1' ? 'localhost' : hostForUrl}:${actual}`,
    port: actual,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
    drain: async ({ delayMs, graceMs }) => {
      listener.leave();
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      listener.state.draining.abort();
      const deadline = Date.now() + graceMs;
      await listener.idle(deadline);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // a request that came in just before the listener closed still gets what is left of the bound
      await listener.idle(deadline);
      server.closeAllConnections();
      await closed;
    },
  };
}

/**
 * Counts the requests in flight (and holdDrain's holds) and gives each request the listener's state;
 * once it is leaving, every answer not yet started carries `Connection: close`.
 */
function trackRequests(server: Server): { state: ListenerState; leave(): void; idle(deadline: number): Promise<void> } {
  const open = new Set<ServerResponse>();
  let busy = 0;
  let wake: (() => void) | undefined;
  const hold = () => {
    busy += 1;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      busy -= 1;
      if (busy === 0) wake?.();
    };
  };
  const state: ListenerState = { leaving: false, draining: new AbortController(), hold };
  // prepended: before the app sees the request
  server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
    listenerOf.set(req, state);
    if (state.leaving) res.setHeader('Connection', 'close');
    open.add(res);
    const release = hold();
    res.once('close', () => {
      open.delete(res);
      release();
    });
  });
  const leave = () => {
    state.leaving = true;
    for (const res of open) if (!res.headersSent) res.setHeader('Connection', 'close');
  };
  const idle = async (deadline: number) => {
    if (busy === 0) return;
    const timer = setTimeout(() => wake?.(), Math.max(0, deadline - Date.now()));
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
    clearTimeout(timer);
    wake = undefined;
  };
  return { state, leave, idle };
}

/** Counts open TCP connections per remote address; one over the cap is destroyed before its TLS handshake. */
function limitConnectionsPerSource(server: Server, cap: number): void {
  if (cap <= 0) return;
  const open = new Map<string, number>();
  server.prependListener('connection', (socket: Socket) => {
    const source = sourceOf(socket);
    const count = open.get(source) ?? 0;
    if (count >= cap) {
      socket.destroy();
      return;
    }
    open.set(source, count + 1);
    socket.once('close', () => {
      const left = (open.get(source) ?? 1) - 1;
      if (left <= 0) open.delete(source);
      else open.set(source, left);
    });
  });
}

/**
 * Node's headers timeout only runs once a request has begun: a connection that completes the TLS
 * handshake and then sends nothing would stay open forever. It gets headersTimeoutMs for its first
 * request header; later requests are bounded by keepAliveTimeout and headersTimeout.
 */
function closeConnectionsWithoutRequest(server: Server, timeoutMs: number): void {
  const waiting = new WeakMap<Socket, NodeJS.Timeout>();
  server.on('secureConnection', (socket: Socket) => {
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    timer.unref();
    waiting.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  });
  server.on('request', (req: IncomingMessage) => {
    const timer = waiting.get(req.socket);
    if (timer) {
      clearTimeout(timer);
      waiting.delete(req.socket);
    }
  });
}
