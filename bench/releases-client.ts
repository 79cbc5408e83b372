import { request, Agent } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { pathToFileURL } from 'node:url';

/**
 * The clients of bench/releases.ts, in a process of their own: their CPU (TLS decryption, 20 sockets)
 * stays off the services' thread, and their memory out of the RSS sampled there. One job per run,
 * given as JSON in argv[2]; the answer is one JSON line on stdout.
 */
export type ClientJob =
  | { kind: 'download'; url: string; headers: Record<string, string>; clients: number; caPem: string }
  | { kind: 'upload'; base: string; token: string; bytes: number; block: number; seed: number; sha256: string; metadata: Record<string, string>; caPem: string };

export interface DownloadAnswer {
  bytes: number;
  seconds: number;
  cipher: string;
  /** CPU of this client process over the run (user + system), per wall second */
  clientCpu: number;
}

export interface UploadAnswer {
  status: number;
  seconds: number;
  /** Upload-File-State of the final PATCH (scanning), or its error body */
  fileState: string;
}

/** The repeated block an upload's body is made of, so that neither side needs a 2 GiB source file. */
export function uploadBlock(size: number, seed: number): Buffer {
  const block = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  // xorshift32: incompressible enough for TLS and the scanner, cheap, the same in both processes
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    block.writeUInt32LE(x >>> 0, i);
  }
  return block;
}

/** One GET read to the end and discarded (hashing would measure the hash). */
function download(url: string, headers: Record<string, string>, agent: Agent): Promise<{ bytes: number; cipher: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url}: ${res.statusCode}`));
        return;
      }
      const cipher = (res.socket as TLSSocket).getCipher?.().name ?? 'unknown';
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      res.on('end', () => resolve({ bytes, cipher }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function downloads(job: Extract<ClientJob, { kind: 'download' }>): Promise<DownloadAnswer> {
  // one connection per client, as 20 separate downloaders would have
  const agent = new Agent({ ca: job.caPem, keepAlive: false, maxSockets: job.clients });
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  const answers = await Promise.all(Array.from({ length: job.clients }, () => download(job.url, job.headers, agent)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  agent.destroy();
  return { bytes: answers.reduce((sum, a) => sum + a.bytes, 0), seconds, cipher: answers[0]?.cipher ?? 'none', clientCpu: (used.user + used.system) / 1e6 / seconds };
}

function send(
  url: string,
  method: string,
  headers: Record<string, string | number>,
  caPem: string,
  body?: () => AsyncIterable<Buffer>,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ca: caPem }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (!body) {
      req.end();
      return;
    }
    // written with backpressure: the body is generated, never held whole
    (async () => {
      for await (const chunk of body()) {
        if (!req.write(chunk)) await new Promise((drained) => req.once('drain', drained));
      }
      req.end();
    })().catch(reject);
  });
}

/** tus 1.0: create, then the whole file in one PATCH. */
async function upload(job: Extract<ClientJob, { kind: 'upload' }>): Promise<UploadAnswer> {
  const auth = { authorization: `Bearer ${job.token}`, 'tus-resumable': '1.0.0' };
  const metadata = Object.entries({ ...job.metadata, sha256: job.sha256 })
    .map(([key, value]) => `${key} ${Buffer.from(value).toString('base64')}`)
    .join(',');
  const created = await send(`${job.base}/v1/uploads`, 'POST', { ...auth, 'upload-length': job.bytes, 'upload-metadata': metadata }, job.caPem);
  if (created.status !== 201) throw new Error(`tus create: ${created.status} ${created.text}`);
  const location = new URL(String(created.headers.location), job.base).href;
  const block = uploadBlock(job.block, job.seed);
  const started = process.hrtime.bigint();
  const body = async function* () {
    for (let sent = 0; sent < job.bytes; sent += block.length) yield block.subarray(0, Math.min(block.length, job.bytes - sent));
  };
  const patched = await send(location, 'PATCH', { ...auth, 'upload-offset': 0, 'content-type': 'application/offset+octet-stream', 'content-length': job.bytes }, job.caPem, body);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { status: patched.status, seconds, fileState: String(patched.headers['upload-file-state'] ?? patched.text) };
}

// run as a child (bench/releases.ts); imported, it only lends uploadBlock
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const job = JSON.parse(process.argv[2] ?? '{}') as ClientJob;
  const answer = job.kind === 'download' ? await downloads(job) : await upload(job);
  process.stdout.write(`${JSON.stringify(answer)}\n`);
}
