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

export interface KeywayRunOptions {
  env?: Record<string, string>;
  input?: string;
  /** XDG_CONFIG_HOME (where sessions are saved); default: a folder with none */
  configHome?: string;
}

/** `keyway …` against the suite: every service's URL and the CA from KEYWAY_* variables, nothing else from this process's environment. */
export function startKeywayAt(suite: Suite, dir: string, files: { ca: string }, args: string[], options: KeywayRunOptions = {}) {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    XDG_CONFIG_HOME: options.configHome ?? join(dir, 'no-session'),
    KEYWAY_ENTITLEMENT_URL: suite.urls.entitlement,
    KEYWAY_PAS_URL: suite.urls.pas,
    KEYWAY_PAC_URL: suite.urls.pac,
    KEYWAY_TOPIC_URL: suite.urls.topic,
    KEYWAY_AUDIT_URL: suite.urls.audit,
    KEYWAY_RELEASES_URL: suite.urls.releases,
    KEYWAY_CA_FILE: files.ca,
    ...options.env,
  };
  return startKeyway(args, env, options.input);
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
