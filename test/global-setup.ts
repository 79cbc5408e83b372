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

/**
 * Streams an earlier run left behind: one killed before its end, or made before suites deleted their
 * streams. Their subscriptions' queues have expired (x-expires) and theirs cannot, so an orphan is a
 * stream no subscription queue of its topic stands beside, in two listings some seconds apart (a
 * stream is declared just before its topic's queues: a run starting beside this one keeps its own).
 * Each holds two of the broker's open files; left to pile up they exhausted them (a CI run failed so).
 */
async function deleteOrphanStreams(): Promise<void> {
  const orphans = (names: string[]) => new Set(names.filter((name) => name.startsWith(STREAM) && !names.some((other) => other.startsWith(`keyway.sub.${name.slice(STREAM.length)}.`))));
  const first = orphans(await listQueues());
  if (first.size === 0) return;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const second = orphans(await listQueues());
  const deleted = await deleteQueues(AMQP_URL, (name) => !(first.has(name) && second.has(name)));
  if (deleted > 0) console.log(`deleted ${deleted} replay streams earlier runs left behind`);
}

export default async function setup() {
  await deleteOrphanStreams().catch((err: unknown) => console.error('deleting earlier runs’ orphaned replay streams failed', err));
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
