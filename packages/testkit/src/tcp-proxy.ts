import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  port: number;
  /** reset every connection and refuse new ones, like a dead server */
  cut(): Promise<void>;
  /** listen again on the same port */
  restore(): Promise<void>;
  /** drop bytes silently in both directions, like a half-dead network path (cut() ends it) */
  pause(): void;
}

/** A TCP proxy on loopback in front of a real service, so a test can hold an outage open as long as it needs. */
export async function tcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let paused = false;
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (chunk) => paused || upstream.write(chunk));
    upstream.on('data', (chunk) => paused || client.write(chunk));
  });
  const listen = (port: number) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  await listen(0);
  const { port } = server.address() as AddressInfo;
  return {
    port,
    async cut() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      paused = false;
    },
    restore: () => listen(port),
    pause: () => {
      paused = true;
    },
  };
}

/** The same URL with host and port pointing at the proxy. */
export function viaProxy(url: string, proxy: TcpProxy): string {
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  return proxied.toString();
}
