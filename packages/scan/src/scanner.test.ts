import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { type ClamdServer, EICAR, startClamdServer } from '@keyway/testkit/servers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { clamdConfig, createScanner, ScanError, ScanFailed, ScannerUnavailable } from './index.ts';
import type { ScannerOptionsInput } from './config.ts';

const MiB = 1024 * 1024;
/** the rig's StreamMaxLength */
const RIG_STREAM_MAX = 64 * MiB;
const scannerAt = (address: string, options: Partial<ScannerOptionsInput> = {}) => createScanner({ address, maxStreamBytes: RIG_STREAM_MAX, ...options });

/** What a scan ended in: the verdict, or the error's class and code. */
const outcomeOf = (promise: Promise<unknown>) =>
  promise.then(
    (verdict) => verdict,
    (err: unknown) => (err instanceof ScanError ? `${err.name} ${err.code}` : String(err)),
  );

/** `total` bytes in fresh chunks (a client that kept them would grow with the size), then `tail`; counts what was read. */
function source(total: number, options: { tail?: Buffer; chunk?: number; onChunk?: (produced: number) => void } = {}) {
  const chunk = options.chunk ?? 64 * 1024;
  const read = { bytes: 0 };
  async function* generate() {
    while (read.bytes < total) {
      const size = Math.min(chunk, total - read.bytes);
      read.bytes += size;
      yield Buffer.alloc(size, read.bytes % 251);
      options.onChunk?.(read.bytes);
    }
    if (options.tail) {
      read.bytes += options.tail.length;
      yield options.tail;
    }
  }
  return { stream: generate(), read };
}

let clamd: ClamdServer;
beforeAll(async () => {
  clamd = await startClamdServer();
});
afterAll(() => clamd?.close());

describe('INSTREAM against a real clamd', () => {
  it('EICAR is infected with its signature, over TCP and over the UNIX socket; a clean file is clean', async () => {
    for (const address of [clamd.address, clamd.socketAddress]) {
      const scanner = scannerAt(address);
      expect(await scanner.scan([EICAR])).toEqual({ clean: false, signature: clamd.eicarSignature });
      expect(await scanner.scan([Buffer.from('release notes, version 1.2.3\n')])).toEqual({ clean: true });
      expect(await scanner.scan([])).toEqual({ clean: true });
    }
  });

  it('scans a file as read from disk, in whatever chunks the read stream gives', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyway-scan-'));
    try {
      const file = join(dir, 'setup.exe');
      await writeFile(file, Buffer.concat([Buffer.alloc(3 * MiB, 7), EICAR]));
      const scanner = scannerAt(clamd.socketAddress);
      expect(await scanner.scan(createReadStream(file, { highWaterMark: 256 * 1024 }))).toEqual({ clean: false, signature: clamd.eicarSignature });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('streams 50 MiB with constant memory, and sees EICAR at its very end', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const live = () => {
      gc();
      const { heapUsed, arrayBuffers } = process.memoryUsage();
      return heapUsed + arrayBuffers;
    };
    // what is still reachable every 4 MiB read, from the first 4 MiB on: a client that kept the stream would grow by all of it
    const samples: number[] = [];
    const { stream, read } = source(50 * MiB, {
      tail: EICAR,
      onChunk: (produced) => {
        if (produced % (4 * MiB) === 0) samples.push(live());
      },
    });
    const started = performance.now();
    const verdict = await scannerAt(clamd.address).scan(stream);
    const seconds = (performance.now() - started) / 1000;
    expect(verdict).toEqual({ clean: false, signature: clamd.eicarSignature });
    expect(read.bytes).toBe(50 * MiB + EICAR.length);
    expect(samples).toHaveLength(12);
    const growth = Math.max(...samples) - samples[0]!;
    // measured: flat within 0.1 MiB, with one 4 MiB bump that comes and goes; without backpressure it grows by 44 MiB
    expect(growth).toBeLessThan(16 * MiB);
    console.log(`50 MiB + EICAR: ${seconds.toFixed(2)} s, ${(50 / seconds).toFixed(0)} MiB/s; live memory grew by at most ${(growth / MiB).toFixed(2)} MiB from 4 to 48 MiB read`);
  });

  it("a stream over the client's limit fails before more is read; over clamd's StreamMaxLength (64M in the rig) clamd cuts it; never clean", async () => {
    const small = source(2 * MiB);
    expect(await outcomeOf(scannerAt(clamd.address, { maxStreamBytes: MiB }).scan(small.stream))).toBe('ScanFailed ERR_SCAN_SIZE_LIMIT');
    expect(small.read.bytes).toBe(MiB + 64 * 1024);

    const exact = source(RIG_STREAM_MAX);
    expect(await scannerAt(clamd.address).scan(exact.stream)).toEqual({ clean: true });
    // A client trusting a larger limit than clamd's: clamd answers mid-stream and closes on the bytes
    // still in flight, so its reset may reach us before its answer (6 runs in 10). Either way not
    // clean; the client's own limit (CLAMD_STREAM_MAX_LENGTH) is what makes the answer certain.
    const over = source(80 * MiB);
    expect(['ScanFailed ERR_SCAN_SIZE_LIMIT', 'ScannerUnavailable ERR_SCANNER_DISCONNECTED']).toContain(
      await outcomeOf(scannerAt(clamd.address, { maxStreamBytes: 2 * RIG_STREAM_MAX }).scan(over.stream)),
    );
    expect(over.read.bytes).toBeLessThan(80 * MiB);
  });

  it('what clamd could not scan in full (past MaxFileSize, with AlertExceedsMax) is a failure, not clean and not a signature', async () => {
    const limited = await startClamdServer({ conf: { MaxFileSize: '1M' } });
    try {
      const scanner = scannerAt(limited.address);
      expect(await outcomeOf(scanner.scan(source(2 * MiB, { tail: EICAR }).stream))).toBe('ScanFailed ERR_SCAN_LIMITS_EXCEEDED');
      expect(await scanner.scan([EICAR])).toEqual({ clean: false, signature: limited.eicarSignature });
    } finally {
      await limited.close();
    }
  });

  it('ping and version answer', async () => {
    const scanner = scannerAt(clamd.socketAddress);
    await expect(scanner.ping()).resolves.toBeUndefined();
    const version = await scanner.version();
    expect(version.engine).toMatch(/^\d+\.\d+\.\d+/);
    // only the rig's own database is loaded: no official daily.cvd to report
    expect(version.database).toBeUndefined();
  });

  it('fails closed when clamd is stopped, killed mid-stream, or gone from its socket; works again once it is back', async () => {
    const own = await startClamdServer();
    try {
      const tcp = scannerAt(own.address);
      const unix = scannerAt(own.socketAddress);
      await own.stop();
      expect(await outcomeOf(tcp.scan([EICAR]))).toBe('ScannerUnavailable ERR_SCANNER_UNREACHABLE');
      expect(await outcomeOf(unix.scan([EICAR]))).toBe('ScannerUnavailable ERR_SCANNER_UNREACHABLE');
      expect(await outcomeOf(tcp.ping())).toBe('ScannerUnavailable ERR_SCANNER_UNREACHABLE');

      await own.start();
      await expect(tcp.ping()).resolves.toBeUndefined();
      let killing: Promise<void> | undefined;
      const { stream } = source(60 * MiB, {
        tail: EICAR,
        onChunk: (produced) => {
          if (produced === 8 * MiB) killing = own.kill();
        },
      });
      expect(await outcomeOf(tcp.scan(stream))).toBe('ScannerUnavailable ERR_SCANNER_DISCONNECTED');
      await killing;

      await own.start();
      expect(await tcp.scan([EICAR])).toEqual({ clean: false, signature: own.eicarSignature });
    } finally {
      await own.close();
    }
  });
});

/** A TCP peer that is not a working clamd: `behave` gets each connection. */
async function fakeClamd(behave: (socket: net.Socket) => void): Promise<{ address: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    behave(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `tcp://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('a peer that does not answer as clamd does', () => {
  it('silence: a verdict that never comes, and a stream nobody reads, time out', async () => {
    const silent = await fakeClamd((socket) => socket.resume());
    const stalled = await fakeClamd((socket) => socket.pause());
    try {
      expect(await outcomeOf(scannerAt(silent.address, { timeoutMs: 300 }).scan([EICAR]))).toBe('ScannerUnavailable ERR_SCANNER_TIMEOUT');
      expect(await outcomeOf(scannerAt(silent.address, { commandTimeoutMs: 300 }).ping())).toBe('ScannerUnavailable ERR_SCANNER_TIMEOUT');
      const unread = source(64 * MiB);
      expect(await outcomeOf(scannerAt(stalled.address, { timeoutMs: 300 }).scan(unread.stream))).toBe('ScannerUnavailable ERR_SCANNER_TIMEOUT');
      // backpressure: reading stopped once the socket's buffers were full
      expect(unread.read.bytes).toBeLessThan(32 * MiB);
    } finally {
      await Promise.all([silent.close(), stalled.close()]);
    }
  });

  it('a garbled, cut or premature answer is a failure, never clean', async () => {
    const answers: Record<string, (socket: net.Socket) => void> = {
      // what clamd would say, but not delimited: cut short, it could have been "stream: OK_AND_MORE"
      'stream: OK without its NUL': (socket) => socket.once('data', () => socket.end('stream: OK')),
      'an unknown answer': (socket) => socket.once('data', () => socket.end('hello\0')),
      'OK before the stream ended': (socket) => socket.once('data', () => socket.write('stream: OK\0')),
      'a reply that never ends': (socket) => socket.once('data', () => socket.write(Buffer.alloc(8192, 0x41))),
      'a closed connection': (socket) => socket.once('data', () => socket.end()),
      'an error': (socket) => socket.once('data', () => socket.end("Can't allocate memory ERROR\0")),
    };
    const outcomes: Record<string, unknown> = {};
    for (const [what, behave] of Object.entries(answers)) {
      const peer = await fakeClamd(behave);
      try {
        outcomes[what] = await outcomeOf(scannerAt(peer.address, { timeoutMs: 2000 }).scan(source(4 * MiB).stream));
      } finally {
        await peer.close();
      }
    }
    expect(outcomes).toEqual({
      'stream: OK without its NUL': 'ScanFailed ERR_SCAN_REPLY',
      'an unknown answer': 'ScanFailed ERR_SCAN_REPLY',
      'OK before the stream ended': 'ScanFailed ERR_SCAN_REPLY',
      'a reply that never ends': 'ScanFailed ERR_SCAN_REPLY',
      'a closed connection': 'ScannerUnavailable ERR_SCANNER_DISCONNECTED',
      'an error': 'ScanFailed ERR_SCANNER_ERROR',
    });
    const oddVersion = await fakeClamd((socket) => socket.once('data', () => socket.end('Clam 9\0')));
    try {
      expect(await outcomeOf(scannerAt(oddVersion.address).version())).toBe('ScanFailed ERR_SCAN_REPLY');
      expect(await outcomeOf(scannerAt(oddVersion.address).ping())).toBe('ScanFailed ERR_SCAN_REPLY');
    } finally {
      await oddVersion.close();
    }
  });

  it('the version of a clamd with the official databases names them', async () => {
    const official = await fakeClamd((socket) => socket.once('data', () => socket.end('ClamAV 1.4.6/27842/Tue Dec  1 09:22:43 2026\0')));
    try {
      expect(await scannerAt(official.address).version()).toEqual({ engine: '1.4.6', database: { version: 27842, builtAt: 'Tue Dec  1 09:22:43 2026' } });
    } finally {
      await official.close();
    }
  });
});

describe('configuration', () => {
  const Env = z.object(clamdConfig);

  it("takes clamd.conf's own size syntax and both kinds of address", () => {
    expect(Env.parse({ CLAMD_ADDRESS: 'unix:/run/clamav/clamd.ctl', CLAMD_STREAM_MAX_LENGTH: '64M' })).toEqual({
      CLAMD_ADDRESS: 'unix:/run/clamav/clamd.ctl',
      CLAMD_TIMEOUT_SEC: 150,
      CLAMD_COMMAND_TIMEOUT_SEC: 5,
      CLAMD_STREAM_MAX_LENGTH: 64 * MiB,
    });
    expect(Env.parse({ CLAMD_ADDRESS: 'tcp://[::1]:3310', CLAMD_STREAM_MAX_LENGTH: '25M' }).CLAMD_STREAM_MAX_LENGTH).toBe(25 * MiB);
    expect(Env.parse({ CLAMD_ADDRESS: '/run/clamav/clamd.ctl', CLAMD_STREAM_MAX_LENGTH: '512k' }).CLAMD_STREAM_MAX_LENGTH).toBe(512 * 1024);
  });

  it('refuses an address or size clamd would not have, naming the key', () => {
    const bad = Env.safeParse({ CLAMD_ADDRESS: 'localhost:3310', CLAMD_STREAM_MAX_LENGTH: '100MB', CLAMD_TIMEOUT_SEC: '0' });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.map((issue) => issue.path.join('.')).sort()).toEqual(['CLAMD_ADDRESS', 'CLAMD_STREAM_MAX_LENGTH', 'CLAMD_TIMEOUT_SEC']);
    // no default: it must be clamd's own
    expect(Env.safeParse({ CLAMD_ADDRESS: 'unix:/run/clamav/clamd.ctl' }).error?.issues.map((issue) => issue.path.join('.'))).toEqual(['CLAMD_STREAM_MAX_LENGTH']);
    expect(() => scannerAt('tcp://127.0.0.1:99999')).toThrow(/tcp:\/\/host:port/);
    expect(new ScanFailed('ERR_SCAN_REPLY', 'x')).toBeInstanceOf(ScanError);
    expect(new ScannerUnavailable('ERR_SCANNER_TIMEOUT', 'x')).toBeInstanceOf(ScanError);
  });
});
