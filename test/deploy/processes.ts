import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHttp } from '@keyway/clients';
import { freePort } from '@keyway/testkit/servers';
import type { DevPki } from '@keyway/tls';

/**
 * Services as their own OS processes, started from their main.ts as an operator runs them, for the
 * tests that need a real process (exit codes, SIGTERM, SIGKILL).
 */

export { freePort };

const outputOf = new WeakMap<ChildProcess, { stdout: string[]; stderr: string[] }>();

/** Spawns `command` with only PATH inherited, keeping what it writes for exited() and logLines(). */
export function spawnKept(command: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(command, args, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: [] as string[], stderr: [] as string[] };
  outputOf.set(child, output);
  child.stdout?.on('data', (d: Buffer) => output.stdout.push(d.toString()));
  child.stderr?.on('data', (d: Buffer) => output.stderr.push(d.toString()));
  return child;
}

/** Starts services/<service>/src/main.ts in a process of its own with exactly `env` (and PATH). */
export const runService = (service: string, env: Record<string, string>): ChildProcess => spawnKept(process.execPath, ['--import', 'tsx', `services/${service}/src/main.ts`], env);

export const exited = (child: ChildProcess) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const done = () => resolve({ code: child.exitCode, stdout: (outputOf.get(child)?.stdout ?? []).join(''), stderr: (outputOf.get(child)?.stderr ?? []).join('') });
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.on('exit', done);
  });

/** What a child wrote to stderr so far (the tail), for a failing test's message. */
export const stderrOf = (child: ChildProcess, chars = 2000): string => (outputOf.get(child)?.stderr ?? []).join('').slice(-chars);

/** What a child wrote to stdout so far (the tail). */
export const stdoutOf = (child: ChildProcess, chars = 2000): string => (outputOf.get(child)?.stdout ?? []).join('').slice(-chars);

/** the JSON log lines a child wrote so far */
export const logLines = (child: ChildProcess) =>
  (outputOf.get(child)?.stdout ?? [])
    .join('')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { level: string; msg: string });

/** Waits until GET `url`/readyz answers 200; throws naming `name` after `timeoutMs`, or as soon as `child` has exited. */
export async function waitReady(name: string, url: string, caPem: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const http = createHttp({ baseUrl: url, caPem, timeoutMs: 1000 });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await http.get('/readyz').then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (child && (child.exitCode !== null || child.signalCode !== null)) throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}): ${stderrOf(child)}${stdoutOf(child)}`);
    if (Date.now() > deadline) throw new Error(`${name} did not become ready within ${timeoutMs} ms${child ? `: ${stderrOf(child)}` : ''}`);
    await sleep(200);
  }
}

/** Writes the CA and every certificate and key of `pki` into `dir` as <name>.crt / <name>.key (keys 0600), as an operator deploys them. */
export function writePkiFiles(dir: string, pki: DevPki): void {
  writeFileSync(join(dir, 'ca.crt'), pki.ca.certPem);
  for (const [name, pair] of Object.entries(pki.certs)) {
    writeFileSync(join(dir, `${name}.crt`), pair.certPem);
    writeFileSync(join(dir, `${name}.key`), pair.keyPem, { mode: 0o600 });
  }
}
