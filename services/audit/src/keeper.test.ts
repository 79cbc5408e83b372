import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAuditLog, loadCheckpointPublicKey, loadCheckpointSigner, verifyChain } from '@keyway/audit';
import { silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { connectTestDatabase, type TestDatabaseConnections } from '@keyway/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trailKeeper } from './keeper.ts';

let database: TestDatabaseConnections;
beforeAll(async () => {
  database = await connectTestDatabase();
});
afterAll(() => database?.close());

async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  for (const deadline = Date.now() + 5000; ; await sleep(20)) {
    const found = await probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('not within 5 s');
  }
}

describe('the audit service keeps the trail', () => {
  it('signs each stream head as it moves (as keyway_audit), and trims what is past retention without breaking verification', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keyway-keeper-'));
    const signer = await loadCheckpointSigner(join(dir, 'audit-checkpoint.key'), { generate: true });
    const publicKey = await loadCheckpointPublicKey(join(dir, 'audit-checkpoint.key.pub'));
    await rm(dir, { recursive: true });
    const auditDb = database.as('audit');
    const pas = createAuditLog({ db: database.as('pas'), store: createMemoryStore({ prefix: 'pas:' }), service: 'pas', logger: silentLogger });
    const signedSeq = () =>
      until(async () => {
        const result = await verifyChain(auditDb, 'pas', { publicKey });
        return result.ok && result.signedSeq > 0 ? result : undefined;
      });
    for (let i = 0; i < 3; i++) await pas.record({ action: 'grant.success', outcome: 'success' });

    const keeper = trailKeeper({ auditDb, signer, logger: silentLogger }, { intervalMs: 50 });
    expect(await signedSeq()).toMatchObject({ headSeq: 3, signedSeq: 3, anchorSeq: 0 });
    await pas.record({ action: 'grant.success', outcome: 'success' });
    await until(async () => ((await verifyChain(auditDb, 'pas', { publicKey })) as { signedSeq?: number }).signedSeq === 4 || undefined);
    await keeper.stop();

    // nothing is past the default 400 days; the administrator shortens retention to nothing: trimmed through
    // the retention function, the anchor keeps the chain verifiable
    expect(await verifyChain(auditDb, 'pas', { publicKey })).toMatchObject({ anchorSeq: 0 });
    await database.admin.query(`UPDATE keyway_audit.retention SET keep = interval '0'`);
    const trimmer = trailKeeper({ auditDb, signer, logger: silentLogger }, { intervalMs: 50 });
    const trimmed = await until(async () => {
      const result = await verifyChain(auditDb, 'pas', { publicKey });
      return result.ok && result.anchorSeq === 4 ? result : undefined;
    });
    await trimmer.stop();
    expect(trimmed).toEqual({ ok: true, stream: 'pas', checked: 0, anchorSeq: 4, headSeq: 4, signedSeq: 4 });
    // the anchor is vouched for by the trim the keeper signed with its key
    expect(await auditDb.query(`SELECT seq::int, key_id FROM keyway_audit.trims WHERE stream = 'pas'`)).toEqual([{ seq: 4, key_id: signer.keyId }]);
    expect(await pas.record({ action: 'grant.success', outcome: 'success' })).toMatchObject({ seq: 5 });
  });
});
