import { generateKeyPairSync } from 'node:crypto';
import type { Db } from '@keyway/db';
import { AccessDenied, InvalidGrant, InvalidRequest, ServerError, silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditLog, type AuditLogOptions } from './audited.ts';
import { appendEvent, canonicalJson, eventHash } from './chain.ts';
import { checkpointStreams, keyId, type CheckpointSigner } from './checkpoint.ts';
import { auditEvent, tokenHash, type AuditEvent, type AuditInput } from './event.ts';
import { readSince } from './export.ts';
import { queryEvents, type AuditQueryInput } from './query.ts';
import { trimStream } from './retention.ts';
import { audited } from './step.ts';
import { verifyAll, verifyChain } from './verify.ts';

/** A migrated database: the admin (who can rewrite anything) and connections as the services' roles. */
interface AuditDatabase {
  admin: Db;
  /** a connection as the service's role (where the backend has roles) */
  as(service: string): Db;
  /** `n` further connections as the service's role (separate pools where the backend has them) */
  connect(service: string, n: number): Promise<Db[]>;
  close(): Promise<void>;
}

export interface AuditHarness {
  start(): Promise<AuditDatabase>;
}

const GENESIS_HASH = '0'.repeat(64);
// a real-looking refresh token: it must never reach the audit store
const TOKEN = 'eyJhbGciOiJFUzI1NiIsInR5cCI6InJ0K2p3dCJ9.eyJzdWIiOiJ1LTEiLCJqdGkiOiJqLTEifQ.c2lnbmF0dXJlLWJ5dGVzLWhlcmU';

const newSigner = (): CheckpointSigner => {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, keyId: keyId(privateKey) };
};

/** One behaviour suite for the audit trail on every database (PostgreSQL, PGlite). */
export function auditContract(name: string, harness: AuditHarness): void {
  describe(`audit trail: ${name}`, () => {
    let database: AuditDatabase;
    let db: Db;
    let auditor: Db;
    let extra: Db[];
    let clock: number;
    const signer = newSigner();
    const publicKey = signer.privateKey;
    const verify = (stream: string, chunk?: number) => verifyChain(auditor, stream, { publicKey, chunk });
    const checkpoint = () => checkpointStreams(auditor, signer, clock);

    const log = (options: Partial<AuditLogOptions> = {}) =>
      createAuditLog({
        db: options.service ? database.as(options.service) : db,
        store: createMemoryStore({ prefix: 'counters:' }),
        service: 'pas',
        logger: silentLogger,
        now: () => clock,
        ...options,
      });

    /** every stored row, as the bytes an attacker with the database would see */
    async function storedBytes(): Promise<string> {
      return JSON.stringify(await database.admin.query('SELECT * FROM keyway_audit.events'));
    }

    const storedEvent = async (stream: string, seq: number): Promise<string | undefined> =>
      (await database.admin.query<{ event: string }>('SELECT event FROM keyway_audit.events WHERE stream = $1 AND seq = $2', [stream, seq]))[0]?.event;

    /** an admin edits the stored event (and, with `columns`, its row too) */
    async function tamper(stream: string, seq: number, change: (event: Record<string, unknown>) => void, columns = false): Promise<void> {
      const event = JSON.parse((await storedEvent(stream, seq)) as string) as Record<string, unknown>;
      change(event);
      await database.admin.query('UPDATE keyway_audit.events SET event = $3 WHERE stream = $1 AND seq = $2', [stream, seq, JSON.stringify(event)]);
      if (columns)
        await database.admin.query('UPDATE keyway_audit.events SET hash = $3, prev_hash = $4, tenant = $5 WHERE stream = $1 AND seq = $2', [
          stream,
          seq,
          event.hash,
          event.prevHash,
          event.tenant ?? null,
        ]);
    }

    /** an admin with the database rewrites event `seq` and recomputes every hash after it: the chain itself is intact again */
    async function rewrite(stream: string, seq: number, change: (event: Record<string, unknown>) => void): Promise<void> {
      const rows = await database.admin.query<{ event: string }>('SELECT event FROM keyway_audit.events WHERE stream = $1 AND seq >= $2 ORDER BY seq', [stream, seq]);
      let prevHash: string | undefined;
      for (const [i, row] of rows.entries()) {
        const { hash: _, ...event } = JSON.parse(row.event) as AuditEvent;
        if (i === 0) change(event);
        else event.prevHash = prevHash as string;
        const hash = eventHash(event);
        await database.admin.query('UPDATE keyway_audit.events SET event = $3, hash = $4, prev_hash = $5, tenant = $6, outcome = $7 WHERE stream = $1 AND seq = $2', [
          stream,
          event.seq,
          canonicalJson({ ...event, hash }),
          hash,
          event.prevHash,
          event.tenant ?? null,
          event.outcome,
        ]);
        prevHash = hash;
      }
    }

    async function recordMany(n: number, input: (i: number) => Partial<AuditInput> = () => ({})): Promise<AuditEvent[]> {
      const audit = log();
      const events: AuditEvent[] = [];
      for (let i = 0; i < n; i++) {
        clock += 1000;
        events.push(await audit.record({ action: 'grant.success', outcome: 'success', tenant: 'acme', ...input(i) }));
      }
      return events;
    }

    beforeAll(async () => {
      database = await harness.start();
      // the events are dated 2026-01-01 on the test clock: past a retention of a day, the floor the retention function keeps
      await database.admin.query(`UPDATE keyway_audit.retention SET keep = interval '1 day'`);
      db = database.as('pas');
      auditor = database.as('audit');
    });
    afterAll(() => database?.close());

    beforeEach(async () => {
      await database.admin.query('TRUNCATE keyway_audit.events, keyway_audit.anchors, keyway_audit.checkpoints, keyway_audit.trims');
      extra = [];
      clock = Date.parse('2026-01-01T00:00:00.000Z');
    });

    it('links each event to the one before by hash, starting from 64 zeros', async () => {
      const [first, second, third] = await recordMany(3, (i) => ({ subject: `u-${i}`, requestId: `req-${i}` }));
      expect(first).toMatchObject({ seq: 1, prevHash: GENESIS_HASH, service: 'pas', action: 'grant.success', subject: 'u-0', requestId: 'req-0' });
      expect(second).toMatchObject({ seq: 2, prevHash: first?.hash });
      expect(third).toMatchObject({ seq: 3, prevHash: second?.hash });
      for (const event of [first, second, third]) {
        const { hash, ...unsigned } = event as AuditEvent;
        expect(hash).toBe(eventHash(unsigned));
        expect(await storedEvent('pas', event?.seq as number)).toBe(canonicalJson(event));
      }
      expect(await verify('pas')).toEqual({ ok: true, stream: 'pas', checked: 3, anchorSeq: 0, headSeq: 3, signedSeq: 0 });
    });

    it('keeps one chain per service stream', async () => {
      const pas = log();
      const pac = log({ service: 'pac' });
      await pas.record({ action: 'grant.success', outcome: 'success' });
      const firstPac = await pac.record({ action: 'sas_key.minted', outcome: 'success' });
      await pas.record({ action: 'token.revoked', outcome: 'success' });
      expect(firstPac).toMatchObject({ seq: 1, prevHash: GENESIS_HASH, service: 'pac' });
      expect(await verify('pas')).toMatchObject({ ok: true, checked: 2 });
      expect(await verify('pac')).toMatchObject({ ok: true, checked: 1 });
      expect(await verify('topic')).toEqual({ ok: true, stream: 'topic', checked: 0, anchorSeq: 0, headSeq: 0, signedSeq: 0 });
      expect(await verifyAll(auditor, { publicKey })).toMatchObject({ ok: true, streams: [{ stream: 'pac' }, { stream: 'pas' }] });
    });

    /** the chain as stored: seq 1..n, each linked to the one before */
    async function expectOneChain(events: AuditEvent[], n: number): Promise<void> {
      const bySeq = [...events].sort((a, b) => a.seq - b.seq);
      expect(bySeq.map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      expect(new Set(bySeq.map((e) => e.requestId)).size).toBe(n);
      for (const [i, event] of bySeq.entries()) expect(event.prevHash).toBe(i === 0 ? GENESIS_HASH : bySeq[i - 1]?.hash);
      expect(await verify('pas')).toEqual({ ok: true, stream: 'pas', checked: n, anchorSeq: 0, headSeq: n, signedSeq: 0 });
    }

    it('50 concurrent appends from 5 connections make one unbroken chain with seq 1..50', async () => {
      extra = await database.connect('pas', 5);
      const events = await Promise.all(
        Array.from({ length: 50 }, (_, i) => appendEvent(extra[i % 5] as Db, 'pas', auditEvent({ service: 'pas', action: 'refresh.success', outcome: 'success', requestId: `r-${i}` }))),
      );
      await expectOneChain(events, 50);
    });

    it('five instances recording 50 events at once group-commit into one unbroken chain', async () => {
      extra = await database.connect('pas', 5);
      const logs = extra.map((d) => createAuditLog({ db: d, store: createMemoryStore({ prefix: 'c:' }), service: 'pas', logger: silentLogger }));
      const events = await Promise.all(Array.from({ length: 50 }, (_, i) => (logs[i % 5] as AuditLog).record({ action: 'refresh.success', outcome: 'success', requestId: `r-${i}` })));
      await expectOneChain(events, 50);
      // one instance's records keep their order in the chain
      const first = events.filter((_, i) => i % 5 === 0).map((e) => e.seq);
      expect(first).toEqual([...first].sort((a, b) => a - b));
    });

    it('verify reports an event whose reason was changed in the database as the first broken link', async () => {
      const events = await recordMany(10, (i) => ({ reason: `reason-${i}` }));
      await tamper('pas', 7, (e) => {
        e.reason = 'nothing to see';
      });
      expect(await verify('pas')).toEqual({ ok: false, stream: 'pas', brokenAt: { seq: 7, id: events[6]?.id }, reason: 'hash_mismatch', detail: expect.stringContaining('event 7 was changed') });
      // later tampering does not hide the first break
      await tamper('pas', 9, (e) => {
        e.outcome = 'denied';
      });
      expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 7 } });
    });

    it('an edited event whose hash was recomputed breaks the link to the next one', async () => {
      const events = await recordMany(5);
      await tamper(
        'pas',
        3,
        (e) => {
          e.tenant = 'other';
          const { hash: _, ...unsigned } = e;
          e.hash = eventHash(unsigned as Omit<AuditEvent, 'hash'>);
        },
        true,
      );
      expect(await verify('pas')).toMatchObject({ ok: false, stream: 'pas', brokenAt: { seq: 4, id: events[3]?.id }, reason: 'prev_hash_mismatch' });
    });

    it('an index column changed without the event (a query would mislead) is caught', async () => {
      const events = await recordMany(3);
      await database.admin.query(`UPDATE keyway_audit.events SET tenant = 'globex' WHERE stream = 'pas' AND seq = 2`);
      expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 2, id: events[1]?.id }, reason: 'column_mismatch' });
    });

    it('detects a deleted event, and reports an unreadable one as malformed', async () => {
      await recordMany(6);
      await database.admin.query(`DELETE FROM keyway_audit.events WHERE stream = 'pas' AND seq = 4`);
      expect(await verify('pas')).toEqual({ ok: false, stream: 'pas', brokenAt: { seq: 4, id: null }, reason: 'missing', detail: expect.any(String) });
      await database.admin.query(`UPDATE keyway_audit.events SET event = '{"not":"an event"' WHERE stream = 'pas' AND seq = 2`);
      expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 2 }, reason: 'malformed' });
    });

    describe('signed checkpoints', () => {
      it('signs each stream head that moved, once', async () => {
        await recordMany(3);
        await log({ service: 'pac' }).record({ action: 'sas_key.minted', outcome: 'success' });
        expect((await checkpoint()).map((c) => [c.stream, c.seq])).toEqual([
          ['pac', 1],
          ['pas', 3],
        ]);
        expect(await checkpoint()).toEqual([]);
        await recordMany(2);
        expect((await checkpoint()).map((c) => [c.stream, c.seq])).toEqual([['pas', 5]]);
        expect(await verify('pas')).toEqual({ ok: true, stream: 'pas', checked: 5, anchorSeq: 0, headSeq: 5, signedSeq: 5 });
      });

      it('history rewritten with every hash recomputed: the chain holds, the checkpoint does not', async () => {
        await recordMany(3);
        await checkpoint();
        const events = await recordMany(3);
        await checkpoint();
        await recordMany(2);
        await rewrite('pas', 5, (e) => {
          e.outcome = 'denied';
        });
        expect(await verify('pas')).toEqual({
          ok: false,
          stream: 'pas',
          brokenAt: { seq: 6, id: events[2]?.id },
          reason: 'checkpoint_mismatch',
          detail: expect.stringContaining('rewritten within seq 4..6'),
        });
      });

      it('the newest events deleted: the head is below the newest checkpoint', async () => {
        await recordMany(8);
        await checkpoint();
        await database.admin.query(`DELETE FROM keyway_audit.events WHERE stream = 'pas' AND seq > 6`);
        expect(await verify('pas')).toEqual({ ok: false, stream: 'pas', brokenAt: { seq: 7, id: null }, reason: 'truncated', detail: expect.stringContaining('events 7..8 were deleted') });
        // and everything deleted
        await database.admin.query(`DELETE FROM keyway_audit.events WHERE stream = 'pas'`);
        expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 1, id: null }, reason: 'truncated' });
        expect(await verifyAll(auditor, { publicKey })).toMatchObject({ ok: false, streams: [{ stream: 'pas', reason: 'truncated' }] });
      });

      it('everything deleted and the stream restarted at seq 1 (a Redis restart, a wiped table)', async () => {
        await recordMany(5);
        await checkpoint();
        await database.admin.query(`DELETE FROM keyway_audit.events WHERE stream = 'pas'`);
        const shorter = await recordMany(2);
        expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 1, id: shorter[0]?.id }, reason: 'restarted' });
        const longer = [...shorter, ...(await recordMany(6))];
        expect(longer.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
        expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 1, id: shorter[0]?.id }, reason: 'restarted' });
      });

      it('a checkpoint edited to match a rewrite, or signed with another key, fails its signature', async () => {
        await recordMany(4);
        await checkpoint();
        await rewrite('pas', 2, (e) => {
          e.tenant = 'globex';
        });
        const [head] = await database.admin.query<{ hash: string }>(`SELECT hash FROM keyway_audit.events WHERE stream = 'pas' AND seq = 4`);
        await database.admin.query(`UPDATE keyway_audit.checkpoints SET hash = $1 WHERE stream = 'pas' AND seq = 4`, [head?.hash]);
        expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 4, id: null }, reason: 'bad_signature', detail: expect.stringContaining('does not verify') });

        await database.admin.query('TRUNCATE keyway_audit.checkpoints');
        await checkpointStreams(auditor, newSigner(), clock);
        expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 4 }, reason: 'bad_signature' });
      });
    });

    it('trimming by count keeps the chain verifiable from the anchor, and checkpoints below it still count', async () => {
      const events = await recordMany(30, (i) => ({ subject: `u-${i % 3}` }));
      await checkpoint();
      const result = await trimStream(auditor, signer, 'pas', { maxEvents: 10 });
      expect(result).toEqual({ trimmed: 20, anchorSeq: 20 });
      expect(await database.admin.query(`SELECT seq::int, hash FROM keyway_audit.anchors`)).toEqual([{ seq: 20, hash: events[19]?.hash }]);
      expect(await storedEvent('pas', 20)).toBeUndefined();
      expect(await verify('pas')).toEqual({ ok: true, stream: 'pas', checked: 10, anchorSeq: 20, headSeq: 30, signedSeq: 30 });
      const page = await queryEvents(auditor, { subject: 'u-0', limit: 500 });
      expect(page.events.map((e) => e.seq)).toEqual([28, 25, 22]);

      // appends continue from the head; tampering after the anchor is still caught
      await log().record({ action: 'grant.success', outcome: 'success' });
      expect(await verify('pas')).toMatchObject({ ok: true, checked: 11, anchorSeq: 20, headSeq: 31 });
      await tamper('pas', 21, (e) => {
        e.subject = 'someone-else';
      });
      expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 21 }, reason: 'hash_mismatch' });
    });

    it('trimming by age, in batches, down to an empty stream that appends continue from', async () => {
      await recordMany(12);
      // events are 1 s apart and the newest is now: keeping 5.5 s keeps the newest 6
      expect(await trimStream(auditor, signer, 'pas', { maxAgeMs: 5500 }, { now: clock, batch: 4 })).toEqual({ trimmed: 4, anchorSeq: 4 });
      expect(await trimStream(auditor, signer, 'pas', { maxAgeMs: 5500 }, { now: clock })).toEqual({ trimmed: 2, anchorSeq: 6 });
      expect(await trimStream(auditor, signer, 'pas', { maxAgeMs: 5500 }, { now: clock })).toEqual({ trimmed: 0, anchorSeq: 6 });
      expect(await verify('pas')).toMatchObject({ ok: true, checked: 6, anchorSeq: 6 });
      await checkpoint();
      expect(await trimStream(auditor, signer, 'pas', { maxEvents: 0 })).toEqual({ trimmed: 6, anchorSeq: 12 });
      expect(await verify('pas')).toEqual({ ok: true, stream: 'pas', checked: 0, anchorSeq: 12, headSeq: 12, signedSeq: 12 });
      expect(await log().record({ action: 'grant.success', outcome: 'success' })).toMatchObject({ seq: 13 });
      expect(await verify('pas')).toMatchObject({ ok: true, checked: 1, anchorSeq: 12, headSeq: 13 });
    });

    it('verify running while retention trims is not fooled into a break', async () => {
      await recordMany(40);
      const [verified, trimmed] = await Promise.all([verify('pas', 2), trimStream(auditor, signer, 'pas', { maxEvents: 5 })]);
      expect(trimmed).toEqual({ trimmed: 35, anchorSeq: 35 });
      expect(verified).toMatchObject({ ok: true, headSeq: 40 });
    });

    it('trimming never erases a broken link', async () => {
      await recordMany(10);
      await tamper('pas', 4, (e) => {
        e.reason = 'rewritten';
      });
      expect(await trimStream(auditor, signer, 'pas', { maxEvents: 2 })).toEqual({ trimmed: 3, anchorSeq: 3, blockedAt: { seq: 4, reason: 'hash_mismatch' } });
      expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 4 }, reason: 'hash_mismatch' });
    });

    describe('signed trims: whoever writes the database cannot pass a deletion off as retention', () => {
      /** an admin deletes events up to `upto` and sets the anchor to the last of them, as trim_stream would */
      async function forgeTrim(upto: number, hash: string): Promise<void> {
        await database.admin.query(`DELETE FROM keyway_audit.events WHERE stream = 'pas' AND seq <= $1`, [upto]);
        await database.admin.query(`INSERT INTO keyway_audit.anchors (stream, seq, hash) VALUES ('pas', $1, $2) ON CONFLICT (stream) DO UPDATE SET seq = $1, hash = $2`, [upto, hash]);
      }

      it('deleting every event and forging the anchor from the newest checkpoint is caught', async () => {
        await recordMany(5);
        const [newest] = await checkpoint();
        await forgeTrim(newest?.seq as number, newest?.hash as string);
        expect(await verify('pas')).toEqual({
          ok: false,
          stream: 'pas',
          brokenAt: { seq: 1, id: null },
          reason: 'unsigned_anchor',
          detail: 'events 1..5 were removed without a signed trim: no trim signed with the checkpoint key names the retention anchor at seq 5',
        });
      });

      it('deleting a recent prefix beyond a legitimate trim is caught from the first event removed without one', async () => {
        const events = await recordMany(10);
        await checkpoint();
        expect(await trimStream(auditor, signer, 'pas', { maxEvents: 7 })).toEqual({ trimmed: 3, anchorSeq: 3 });
        expect(await verify('pas')).toEqual({ ok: true, stream: 'pas', checked: 7, anchorSeq: 3, headSeq: 10, signedSeq: 10 });
        await forgeTrim(7, events[6]?.hash as string);
        expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 4, id: null }, reason: 'unsigned_anchor', detail: expect.stringContaining('events 4..7 were removed') });
      });

      it('a signed trim whose signature is altered, or made with another key, no longer vouches for its anchor', async () => {
        await recordMany(6);
        await trimStream(auditor, signer, 'pas', { maxEvents: 2 });
        expect(await verify('pas')).toMatchObject({ ok: true, anchorSeq: 4, checked: 2 });
        const [trim] = await database.admin.query<{ signature: string }>(`SELECT signature FROM keyway_audit.trims WHERE stream = 'pas' AND seq = 4`);
        const altered = `${trim?.signature.startsWith('A') ? 'B' : 'A'}${trim?.signature.slice(1)}`;
        await database.admin.query(`UPDATE keyway_audit.trims SET signature = $1 WHERE stream = 'pas' AND seq = 4`, [altered]);
        expect(await verify('pas')).toMatchObject({
          ok: false,
          brokenAt: { seq: 1, id: null },
          reason: 'unsigned_anchor',
          detail: expect.stringContaining('the trim stored for it does not verify with the checkpoint public key'),
        });

        // the attacker's own key signs a trim, as the audit service would: the verifier holds another public key
        await database.admin.query('TRUNCATE keyway_audit.events, keyway_audit.anchors, keyway_audit.trims');
        await recordMany(6);
        await trimStream(auditor, newSigner(), 'pas', { maxEvents: 2 });
        expect(await verify('pas')).toMatchObject({ ok: false, brokenAt: { seq: 1 }, reason: 'unsigned_anchor' });
      });

      it('a trim signed for one purpose does not pass as a checkpoint, nor a checkpoint as a trim', async () => {
        await recordMany(3);
        const [head] = await checkpoint();
        // the checkpoint's signature copied into a trim row for the same (seq, hash)
        await forgeTrim(3, head?.hash as string);
        await database.admin.query(`INSERT INTO keyway_audit.trims VALUES ('pas', 3, $1, $2, $2, $3, $4)`, [head?.hash, head?.time, head?.keyId, head?.signature]);
        expect(await verify('pas')).toMatchObject({ ok: false, reason: 'unsigned_anchor', detail: expect.stringContaining('does not verify') });
      });

      it('with the retention the verifier expects, a signed trim of events younger than it is caught', async () => {
        // events 1 s apart, the newest now: the 4th is 4 s old when trimmed
        await recordMany(8);
        await trimStream(auditor, signer, 'pas', { maxEvents: 4 }, { now: clock });
        expect(await verifyChain(auditor, 'pas', { publicKey, minRetentionMs: 4000 })).toMatchObject({ ok: true, anchorSeq: 4 });
        expect(await verifyChain(auditor, 'pas', { publicKey, minRetentionMs: 4001 })).toMatchObject({
          ok: false,
          brokenAt: { seq: 4, id: null },
          reason: 'early_trim',
          detail: 'event 4 (written 2026-01-01T00:00:04.000Z) was trimmed 2026-01-01T00:00:08.000Z, after 4 s: less than the 4.001 s of retention expected',
        });
      });
    });

    describe('query', () => {
      let all: AuditEvent[];

      beforeEach(async () => {
        const tenants = ['acme', 'globex', 'initech'];
        const actions = ['grant.success', 'grant.denied', 'sas_key.minted', 'login.failed'];
        const outcomes = { 'grant.success': 'success', 'grant.denied': 'denied', 'sas_key.minted': 'success', 'login.failed': 'failure' } as const;
        const pas = log();
        const pac = log({ service: 'pac' });
        all = [];
        for (let i = 0; i < 90; i++) {
          // two events share each millisecond so ties in time are exercised too
          if (i % 2 === 0) clock += 1000;
          const action = actions[i % 4] as keyof typeof outcomes;
          const input = { action, outcome: outcomes[action], tenant: tenants[i % 3], subject: `user-${i % 5}` };
          all.push(await (i % 3 === 1 ? pac : pas).record(input));
        }
      });

      /** every page from the first until nextCursor is null */
      async function pages(query: AuditQueryInput): Promise<AuditEvent[][]> {
        const result: AuditEvent[][] = [];
        let cursor: string | undefined;
        do {
          const page = await queryEvents(auditor, { ...query, cursor });
          expect(page.events.length).toBeLessThanOrEqual(query.limit ?? 100);
          result.push(page.events);
          cursor = page.nextCursor ?? undefined;
        } while (cursor !== undefined);
        return result;
      }

      const expected = (keep: (e: AuditEvent) => boolean, order: 'newest' | 'oldest' = 'newest') =>
        all.filter(keep).sort((a, b) => (order === 'oldest' ? a.id.localeCompare(b.id) : b.id.localeCompare(a.id)));

      it.each([
        ['tenant', { tenant: 'globex' }, (e: AuditEvent) => e.tenant === 'globex'],
        ['subject', { subject: 'user-2' }, (e: AuditEvent) => e.subject === 'user-2'],
        ['action', { action: 'login.failed' }, (e: AuditEvent) => e.action === 'login.failed'],
        ['outcome', { outcome: 'denied' }, (e: AuditEvent) => e.outcome === 'denied'],
        ['stream', { stream: 'pac' }, (e: AuditEvent) => e.service === 'pac'],
        ['tenant and action', { tenant: 'acme', action: 'grant.success' }, (e: AuditEvent) => e.tenant === 'acme' && e.action === 'grant.success'],
        ['subject, tenant and outcome', { subject: 'user-1', tenant: 'initech', outcome: 'success' }, (e: AuditEvent) => e.subject === 'user-1' && e.tenant === 'initech' && e.outcome === 'success'],
        ['nothing', {}, () => true],
      ] as const)('by %s, paged, exactly the matching events without duplicates', async (_, filter, keep) => {
        for (const order of ['newest', 'oldest'] as const) {
          const got = (await pages({ ...filter, order, limit: 7 })).flat();
          expect(got.map((e) => e.id)).toEqual(expected(keep, order).map((e) => e.id));
          expect(new Set(got.map((e) => e.id)).size).toBe(got.length);
        }
      });

      it('by time range: from inclusive, to exclusive, with other filters', async () => {
        const from = (all[20] as AuditEvent).time;
        const to = (all[60] as AuditEvent).time;
        const inRange = (e: AuditEvent) => e.time >= from && e.time < to;
        const got = (await pages({ from, to, limit: 9 })).flat();
        expect(got.map((e) => e.id)).toEqual(expected(inRange).map((e) => e.id));
        expect(got).toHaveLength(40);
        const acme = (await pages({ from, to, tenant: 'acme', order: 'oldest', limit: 4 })).flat();
        expect(acme.map((e) => e.id)).toEqual(expected((e) => inRange(e) && e.tenant === 'acme', 'oldest').map((e) => e.id));
        // offsets other than Z are the same instant
        const shifted = new Date(Date.parse(from)).toISOString().replace('Z', '+00:00');
        expect((await pages({ from: shifted, to, limit: 500 })).flat()).toHaveLength(40);
      });

      it('pages are full until the last, and the cursor is opaque', async () => {
        const sizes = (await pages({ tenant: 'acme', limit: 7 })).map((p) => p.length);
        expect(sizes).toEqual([7, 7, 7, 7, 2]);
        const first = await queryEvents(auditor, { limit: 1 });
        expect(first.events[0]?.id).toBe(expected(() => true)[0]?.id);
        expect(first.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
      });

      it('refuses bad parameters with invalid_request', async () => {
        await expect(queryEvents(auditor, { limit: 501 })).rejects.toBeInstanceOf(InvalidRequest);
        await expect(queryEvents(auditor, { cursor: 'bm90IGEgY3Vyc29y' })).rejects.toBeInstanceOf(InvalidRequest);
        await expect(queryEvents(auditor, { from: 'yesterday' })).rejects.toBeInstanceOf(InvalidRequest);
        await expect(queryEvents(auditor, { action: 'GrantSuccess' })).rejects.toBeInstanceOf(InvalidRequest);
      });
    });

    it('readSince feeds a stream in seq order, and reports what retention trimmed first', async () => {
      const events = await recordMany(10);
      const first = await readSince(auditor, 'pas', 0, 4);
      expect(first).toEqual({ events: events.slice(0, 4), missed: 0, headSeq: 10 });
      const rest = await readSince(auditor, 'pas', 4, 100);
      expect(rest.events.map((e) => e.seq)).toEqual([5, 6, 7, 8, 9, 10]);
      expect((await readSince(auditor, 'pas', 10)).events).toEqual([]);

      await trimStream(auditor, signer, 'pas', { maxEvents: 3 });
      const behind = await readSince(auditor, 'pas', 4, 100);
      expect(behind.missed).toBe(3);
      expect(behind.events.map((e) => e.seq)).toEqual([8, 9, 10]);
    });

    it('readSince stops at a hole instead of feeding a gap', async () => {
      await recordMany(5);
      await database.admin.query(`DELETE FROM keyway_audit.events WHERE stream = 'pas' AND seq = 3`);
      await expect(readSince(auditor, 'pas', 0)).rejects.toMatchObject({ code: 'ERR_AUDIT_INTEGRITY' });
    });

    it('ready() probes the write path without touching the chain', async () => {
      const audit = log();
      await audit.record({ action: 'grant.success', outcome: 'success' });
      const before = await storedBytes();
      await audit.ready();
      expect(await storedBytes()).toEqual(before);
      expect(await verify('pas')).toMatchObject({ ok: true, checked: 1 });
    });

    it('refuses secrets: a token never reaches the stored bytes', async () => {
      const audit = log();
      const attempts: AuditInput[] = [
        { action: 'grant.success', outcome: 'success', detail: { refresh_token: TOKEN } },
        { action: 'grant.success', outcome: 'success', detail: { note: `presented ${TOKEN}` } },
        { action: 'grant.success', outcome: 'success', tokenId: TOKEN },
        { action: 'grant.success', outcome: 'success', reason: `Bearer ${TOKEN}` },
        { action: 'sas_key.minted', outcome: 'success', detail: { key: 'SharedAccessSignature sr=x&sig=abc%3D&se=1&skn=listen' } },
        { action: 'grant.success', outcome: 'success', ...({ password: 'hunter2-hunter2' } as object) },
      ];
      for (const input of attempts) await expect(audit.record(input)).rejects.toBeInstanceOf(ServerError);
      expect(await storedBytes()).toEqual('[]');

      const key = 'a-deployment-audit-hmac-key-of-32+bytes';
      const event = await audit.record({ action: 'token.revoked', outcome: 'success', tokenId: tokenHash(TOKEN, key), detail: { hint: 'refresh_token' } });
      expect(event.tokenId).toMatch(/^hmac-sha256:[A-Za-z0-9_-]{43}$/);
      const bytes = await storedBytes();
      expect(bytes).toContain(event.tokenId);
      expect(bytes).not.toContain(TOKEN);
      expect(bytes).not.toContain(TOKEN.split('.')[2]);
      expect(bytes).not.toContain('hunter2');
    });

    it('audited() records success with what the action noted, and the refusal of a failed action', async () => {
      const audit = log();
      const result = await audited({ audit }, { action: 'grant.success', fields: { requestId: 'req-1', sourceAddress: '203.0.113.7' } }, async (scope) => {
        scope.note({ subject: 'u-1', tenant: 'acme' });
        scope.note({ tokenId: 'jti-1', detail: { grant_type: 'password' } });
        return 'pair';
      });
      expect(result).toBe('pair');

      const denied = new AccessDenied(undefined, 'role_missing');
      await expect(
        audited({ audit }, { action: 'grant.success', fields: { requestId: 'req-2' } }, async (scope) => {
          scope.note({ subject: 'u-2', tenant: 'acme' });
          throw denied;
        }),
      ).rejects.toBe(denied);

      // one definition of denied (refusalOf): any 4xx is the caller refused, a 5xx or anything else a failure
      const failed = new InvalidGrant(undefined, `refresh token reuse: ${TOKEN}`);
      await expect(
        audited({ audit }, { action: 'refresh.success', fields: { tenant: 'acme', subject: 'u-3' }, refusal: () => ({ action: 'refresh_family.revoked' }) }, async () => Promise.reject(failed)),
      ).rejects.toBe(failed);

      const broken = new Error('socket hang up');
      await expect(audited({ audit }, { action: 'sas_key.minted' }, async () => Promise.reject(broken))).rejects.toBe(broken);

      const events = (await readSince(auditor, 'pas', 0)).events;
      expect(events.map(({ action, outcome, reason }) => ({ action, outcome, reason }))).toEqual([
        { action: 'grant.success', outcome: 'success', reason: undefined },
        { action: 'grant.denied', outcome: 'denied', reason: 'access_denied' },
        { action: 'refresh_family.revoked', outcome: 'denied', reason: 'invalid_grant' },
        { action: 'sas_key.failed', outcome: 'failure', reason: 'server_error' },
      ]);
      expect(events[0]).toMatchObject({ subject: 'u-1', tenant: 'acme', tokenId: 'jti-1', requestId: 'req-1', sourceAddress: '203.0.113.7', detail: { grant_type: 'password' } });
      expect(events[1]).toMatchObject({ subject: 'u-2', requestId: 'req-2', detail: { error_detail: 'role_missing' } });
      // error details are text the action did not write: a credential in one is redacted, not stored
      expect(events[2]?.detail).toEqual({ error_detail: '[redacted]' });
      expect(await storedBytes()).not.toContain(TOKEN);
    });
  });
}
