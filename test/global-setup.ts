import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PKI_NAMES } from '../packages/testkit/src/pki.ts';
import { AMQP_URL } from '../packages/testkit/src/env.ts';
import { deleteQueues, listQueues } from '../packages/testkit/src/rabbit-cleanup.ts';
import { ensureDevPki, renewDevPki } from '@keyway/tls';

/**
 * One development PKI for the whole run (RSA key generation takes seconds), kept renewed, and one scratch folder
 * every test's temporary files go under (TMPDIR, inherited by the test workers and the processes
 * they start): both removed afterwards, so a run leaves nothing in the machine's temp folder.
 */
/**
 * Replay streams (issue 16) cannot expire (RabbitMQ has no x-expires for streams) and every test topic gets one:
 * those the run made are deleted at its end. Without RabbitMQ (a memory-only run) there are none.
 */
const STREAM = 'keyway.stream.';
const streamsBefore = async (): Promise<Set<string> | undefined> => {
  try {
    return new Set((await listQueues()).filter((name) => name.startsWith(STREAM)));
  } catch {
    return undefined;
  }
};

export default async function setup() {
  const existingStreams = await streamsBefore();
  const scratch = mkdtempSync(join(tmpdir(), 'keyway-test-run-'));
  // private servers run as their own users (postgres, rabbitmq) and must reach their folders inside
  chmodSync(scratch, 0o755);
  const pki = mkdtempSync(join(scratch, 'pki-'));
  await ensureDevPki(pki, [...PKI_NAMES]);
  // service certificates live 12 hours: a run outlasting half of that gets them renewed in place (the suites re-read them)
  const stopRenewing = renewDevPki(pki, [...PKI_NAMES], { onError: (err) => console.error('renewing the test PKI failed', err) });
  process.env.KEYWAY_TEST_PKI_DIR = pki;
  process.env.TMPDIR = scratch;
  return async () => {
    stopRenewing();
    if (existingStreams)
      await deleteQueues(AMQP_URL, (name) => !name.startsWith(STREAM) || existingStreams.has(name)).catch((err: unknown) => console.error('deleting the run’s replay streams failed', err));
    rmSync(scratch, { recursive: true, force: true });
  };
}
