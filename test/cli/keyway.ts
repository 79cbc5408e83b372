import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Suite } from '@keyway/testkit';

const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'packages/cli/src/main.ts');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The suite's CA and the operator's certificate and key, written into `dir` for --ca-file, --cert and --key. */
export function operatorFiles(suite: Suite, dir: string): { ca: string; cert: string; key: string } {
  const operator = suite.pki.certs.operator!;
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'operator.crt'), key: join(dir, 'operator.key') };
  writeFileSync(files.ca, suite.pki.ca.certPem);
  writeFileSync(files.cert, operator.certPem);
  writeFileSync(files.key, operator.keyPem, { mode: 0o600 });
  return files;
}

/**
 * `keyway …` as a script runs it: a child process (asynchronous, so this process's suite keeps
 * answering) with `env` as its whole environment and `input` on its standard input.
 */
export function startKeyway(args: string[], env: Record<string, string>, input = '') {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const done = new Promise<Run>((resolveRun, fail) => {
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
  child.stdin.end(input);
  return { child, done };
}
