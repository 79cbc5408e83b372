import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, UnreachableError } from '@keyway/clients';
import type { AuditEvent } from '@keyway/contracts';
import { AMQP_URL, createTestDatabase, REDIS_URL, startSuite, type Suite, type TestDatabase } from '@keyway/testkit';
import { startPostgresServer, type PostgresServer } from '@keyway/testkit/servers';
import { compare, deliveryRig, holdsAcceptedAfter, holdsEveryAccepted, report, timeline } from './delivery-rig.ts';
import { PASSWORD, rawClient } from '../helpers.ts';

/** How long PostgreSQL stays stopped. */
const DOWN_MS = 8000;
/** After PostgreSQL is back, every probed endpoint answers 2xx again within this, with no service restarted. */
const RECOVERY_MS = 15_000;

// Issue 11: the system of record stopped and started mid-traffic. A private PostgreSQL cluster holds
// the suite's database (the machine's server is never stopped); Redis and RabbitMQ are the machine's.
let pg: PostgresServer;
let database: TestDatabase;
let suite: Suite;
beforeAll(async () => {
  pg = await startPostgresServer();
  database = await createTestDatabase(pg.adminUrl);
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL, database, topic: { lockDurationSec: 2 } });
});
afterAll(async () => {
  await suite?.close();
  await pg?.close();
});

/** Every event of one stream, oldest first, through the audit API. */
async function streamEvents(suite: Suite, stream: string): Promise<AuditEvent[]> {
  const events: AuditEvent[] = [];
  let cursor: string | undefined;
  do {
    const page = await suite.auditor.events({ stream, order: 'oldest', limit: 500, cursor });
    events.push(...page.events);
    cursor = page.nextCursor ?? undefined;
  } while (cursor !== undefined);
  return events;
}

describe('delivery and administration through a PostgreSQL restart', () => {
  it(`answers 503 while PostgreSQL is down for ${DOWN_MS / 1000} s, never 500, recovers without a service restart, loses no batch and no audit event`, async () => {
    const stage = timeline('postgres-restart');
    const rig = await deliveryRig(suite);
    const context = () => `${rig.outcomes.toString()}\nagent: ${rig.agentLog.join('\n       ')}`;
    // An admin change accepted before the outage: a user created, then their roles changed.
    const before = await suite.operator.createUser(rig.tenant, { email: `before@${rig.tenant}.example`, password: PASSWORD, roles: ['full-control'] });
    await suite.operator.setRoles(rig.tenant, before.id, ['downloader']);
    const { refresh_token } = await suite.pas.password(`agent@${rig.tenant}.example`, PASSWORD);
    stage('tenant, producer, importer and probes ready');

    // The probes an operator and a user make: each outcome counted per endpoint, every refusal's code kept.
    const codes = new Map<string, Set<string>>();
    let created = 0;
    const accepted: string[] = [];
    const probe = async (where: string, call: () => Promise<unknown>): Promise<boolean> => {
      try {
        await call();
        rig.outcomes.add(where, '2xx');
        return true;
      } catch (err) {
        if (err instanceof ApiError) {
          rig.outcomes.add(where, String(err.status));
          codes.set(where, (codes.get(where) ?? new Set()).add(`${err.status} ${err.code}`));
        } else if (err instanceof UnreachableError) rig.outcomes.add(where, `network:${err.causeCode ?? 'unknown'}`);
        else throw err;
        return false;
      }
    };
    /** a service's readiness, which checks its database: 200 or 503 */
    const readyz = async (service: 'pas' | 'pac' | 'entitlement'): Promise<boolean> => {
      const { status } = await rawClient(suite, service).get('/readyz');
      rig.outcomes.add(`${service}.readyz`, String(status));
      return status === 200;
    };
    const probes = async (): Promise<boolean> => {
      const ok = await Promise.all([
        readyz('pas'),
        readyz('pac'),
        readyz('entitlement'),
        probe('token', () => suite.pas.password(`agent@${rig.tenant}.example`, PASSWORD)),
        probe('sas', () => suite.pac.sas({ refresh_token, rights: 'listen' })),
        probe('admin.getTenant', () => suite.operator.getTenant(rig.tenant)),
        probe('admin.listUsers', () => suite.operator.listUsers(rig.tenant)),
        probe('admin.createUser', async () => {
          const email = `u${created++}@${rig.tenant}.example`;
          await suite.operator.createUser(rig.tenant, { email, password: PASSWORD, roles: ['downloader'] });
          accepted.push(email);
        }),
      ]);
      return ok.every(Boolean);
    };

    rig.agent.start();
    const producer = rig.produce();
    let recoveredMs = Number.NaN;
    try {
      expect(await rig.waitForSink((ids) => ids.length >= 30, 15_000), `the importer never got going; ${context()}`).toBe(true);
      stage('sink holds 30; stopping PostgreSQL');
      await pg.stop();
      const startAt = Date.now() + DOWN_MS;
      while (Date.now() < startAt) {
        await probes();
        await sleep(200);
      }
      const downOutcomes = rig.outcomes.toString();
      await pg.start();
      const startedAt = Date.now();
      const acceptedAtStart = producer.published.length;
      stage('PostgreSQL started again');

      // Recovery: every probe answers 2xx in one round, with the same service processes as before.
      while (!(await probes())) {
        expect(Date.now() - startedAt < RECOVERY_MS, `not recovered ${RECOVERY_MS} ms after PostgreSQL returned; ${context()}`).toBe(true);
        await sleep(200);
      }
      recoveredMs = Date.now() - startedAt;
      stage(`every probe answers 2xx again after ${recoveredMs} ms`);
      const resumed = await rig.waitForSink(holdsAcceptedAfter(producer, acceptedAtStart), RECOVERY_MS);
      expect(resumed, `no delivery after PostgreSQL returned; ${context()}`).toBe(true);
      stage(`delivery resumed ${Date.now() - startedAt} ms after the start; outcomes until the start: ${downOutcomes}`);
    } finally {
      if (pg.pid() === undefined) await pg.start();
      await producer.stop();
    }
    const complete = await rig.waitForSink(holdsEveryAccepted(producer), 15_000);
    await rig.stopAgent();
    const verdict = compare(producer, rig.sinkIds());

    // The audit trail: every stream's chain verifies and its seq runs 1, 2, 3, ... without a gap.
    const verified = await suite.auditor.verifyAll();
    const gaps: string[] = [];
    const counts: Record<string, number> = {};
    for (const { stream } of verified.streams) {
      const events = await streamEvents(suite, stream);
      counts[stream] = events.length;
      events.forEach((e, i) => {
        if (e.seq !== i + 1) gaps.push(`${stream}: event ${i + 1} has seq ${e.seq}`);
      });
    }
    report('postgres-restart', {
      summary: verdict.summary,
      recoveredMs,
      outcomes: rig.outcomes.toString(),
      refusals: [...codes].map(([where, c]) => `${where} [${[...c].join(', ')}]`).join('; '),
      audit: JSON.stringify(counts),
      agentErrors: rig.agent.stats.errors,
    });

    expect(complete, `${verdict.summary}; ${context()}`).toBe(true);
    expect(verdict.missing, verdict.summary).toEqual([]);
    expect(verdict.unknown, verdict.summary).toEqual([]);
    expect(producer.gaveUp, verdict.summary).toEqual([]);
    const seen = rig.outcomes.toString();
    // The outage was seen, as 503 temporarily_unavailable, at the token endpoint and the admin API ...
    for (const where of ['token', 'sas', 'admin.createUser', 'pas.readyz', 'pac.readyz', 'entitlement.readyz'])
      expect(
        rig.outcomes.count((w, o) => w === where && o === '503'),
        seen,
      ).toBeGreaterThan(0);
    for (const [where, c] of codes) for (const code of c) expect([`${where} 503 temporarily_unavailable`]).toContain(`${where} ${code}`);
    // ... and never as an internal error, at any endpoint the producer, the importer or the probes called.
    expect(rig.outcomes.internalErrors(), seen).toBe(0);

    expect(verified.ok, JSON.stringify(verified)).toBe(true);
    expect(gaps).toEqual([]);
    expect(Object.keys(counts)).toEqual(expect.arrayContaining(['pas', 'pac', 'entitlement']));
    // The change made before the outage is there, and so is every user whose creation was answered 2xx.
    expect(await suite.operator.getUser(rig.tenant, before.id)).toMatchObject({ email: before.email, roles: ['downloader'] });
    expect((await suite.operator.listUsers(rig.tenant)).users.map((u) => u.email)).toEqual(expect.arrayContaining(accepted));
  }, 150_000);
});
