import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { RequestListener } from 'node:http';
import type { TlsMaterial } from './config.ts';

export interface RunningServer {
  url: string;
  port: number;
  server: Server;
  close(): Promise<void>;
}

/**
 * HTTPS only, TLS 1.2+. Client certificates are requested but not required at the TLS layer so one
 * listener serves both mTLS service callers and bearer-token callers; routes decide (service-auth.ts).
 */
export async function listenHttps(app: RequestListener, tls: TlsMaterial, port: number, host = '127.0.0.1'): Promise<RunningServer> {
  const server = createServer(
    { cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    app,
  );
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // Long-poll receives may wait up to a minute; keep the default request timeout above that.
  server.requestTimeout = 120_000;
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
  };
}
