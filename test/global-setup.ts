import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PKI_NAMES } from '../packages/testkit/src/pki.ts';
import { AMQP_URL } from '../packages/testkit/src/env.ts';
import { deleteQueues, listQueues } from '../packages/testkit/src/rabbit-cleanup.ts';
import { ensureDevPki, renewDevPki } from '@keyway/tls';

/**
 * Replay streams (issue 16) cannot expire (RabbitMQ has no x-expires for streams), and each holds two of
 * the broker's open files: left to pile up they exhausted them (a CI run failed so). Suites delete the
 * streams of what they made; this catches the rest (a run killed before its end, a test outside a
 * suite): a stream no subscription queue of its topic stands beside, in two listings some seconds apart
 * (those queues expire by themselves; a stream is declared just before its topic's queues). A stream of
 * another run going on beside this one has its queues, so it is kept. Without RabbitMQ there are none.
 */
const STREAM = 'keyway.stream.';
async function deleteOrphanStreams(): Promise<void> {
  const orphans = (names: string[]) => new Set(names.filter((name) => name.startsWith(STREAM) && !names.some((other) => other.startsWith(`keyway.sub.${name.slice(STREAM.length)}.`))));
  const first = orphans(await listQueues());
  if (first.size === 0) return;
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const second = orphans(await listQueues());
  await deleteQueues(AMQP_URL, (name) => !(first.has(name) && second.has(name)));
}
const sweepStreams = () => deleteOrphanStreams().catch((err: unknown) => console.error('deleting orphaned replay streams failed', err));

/**
 * One development PKI for the whole run (RSA key generation takes seconds), kept renewed, and one scratch folder
 * every test's temporary files go under (TMPDIR, inherited by the test workers and the processes
 * they start): both removed afterwards, so a run leaves nothing in the machine's temp folder.
 */
export default async function setup() {
  await sweepStreams();
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
    await sweepStreams();
    rmSync(scratch, { recursive: true, force: true });
  };
}
