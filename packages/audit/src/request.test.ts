import { AccessDenied, InvalidGrant, silentLogger, TemporarilyUnavailable } from '@keyway/kit';
import { openPostgres } from '@keyway/db';
import { createMemoryStore } from '@keyway/store';
import { connectTestDatabase, type TestDatabaseConnections } from '@keyway/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from './audited.ts';
import { mergeFields, readinessWithTrail, refusalOf, requestFields, requireWritableTrail } from './request.ts';

const socket = { remoteAddress: '203.0.113.9' };

describe('request fields', () => {
  it('carry the request id and source address, and the operator as actor on the admin APIs', () => {
    expect(requestFields({ id: 'r-1', ip: '198.51.100.7', socket })).toEqual({ requestId: 'r-1', sourceAddress: '198.51.100.7' });
    expect(requestFields({ id: 'r-2', socket })).toEqual({ requestId: 'r-2', sourceAddress: '203.0.113.9' });
    expect(requestFields({ id: 'r-3', socket, operator: { via: 'bearer', sub: 'op-1', tenant: 'vendor', jti: 'j-1' } })).toEqual({
      requestId: 'r-3',
      sourceAddress: '203.0.113.9',
      subject: 'op-1',
      tokenId: 'j-1',
      detail: { actor: 'operator_token', actor_tenant: 'vendor' },
    });
    expect(requestFields({ id: 'r-4', socket, operator: { via: 'certificate', service: 'operator' } })).toMatchObject({ clientId: 'operator', detail: { actor: 'operator_certificate' } });
  });

  it('merge, detail entries included', () => {
    expect(mergeFields({ tenant: 'a', detail: { x: '1' } }, { subject: 's', detail: { y: '2' } })).toEqual({ tenant: 'a', subject: 's', detail: { x: '1', y: '2' } });
    expect(mergeFields({ tenant: 'a' }, { tenant: 'b' })).toEqual({ tenant: 'b', detail: undefined });
  });
});

describe('refusalOf', () => {
  it('is denied for a 4xx and a failure for a 5xx or anything unexpected, with the OAuth code as reason', () => {
    expect(refusalOf(new AccessDenied(undefined, 'role_missing'))).toEqual({ outcome: 'denied', reason: 'access_denied', status: 403, detail: { error_detail: 'role_missing' } });
    expect(refusalOf(new InvalidGrant())).toEqual({ outcome: 'denied', reason: 'invalid_grant', status: 400, detail: {} });
    expect(refusalOf(new TemporarilyUnavailable())).toMatchObject({ outcome: 'failure', reason: 'temporarily_unavailable', status: 503 });
    expect(refusalOf(new Error('socket hang up'))).toEqual({ outcome: 'failure', reason: 'server_error', status: 500, detail: {} });
  });

  it('redacts a detail that holds a credential', () => {
    const token = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln';
    expect(refusalOf(new InvalidGrant(undefined, `bad token ${token}`)).detail).toEqual({ error_detail: '[redacted]' });
  });
});

let db: TestDatabaseConnections;
beforeAll(async () => {
  db = await connectTestDatabase();
});
afterAll(() => db?.close());

describe('requireWritableTrail', () => {
  it('passes while the database takes writes and refuses with 503 temporarily_unavailable once it cannot reach it', async () => {
    const trail = openPostgres({ url: db.database.serviceUrl('pas') });
    const log = createAuditLog({ db: trail, store: createMemoryStore({ prefix: 'test:pas:' }), service: 'pas', logger: silentLogger });
    await expect(requireWritableTrail(log)).resolves.toBeUndefined();
    await trail.close();
    const refused = await requireWritableTrail(log).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(TemporarilyUnavailable);
    expect(refused).toMatchObject({ status: 503, code: 'temporarily_unavailable' });
  });
});

describe('readinessWithTrail', () => {
  it('checks the service store and the trail apart, so /readyz names the one that fails', async () => {
    const store = createMemoryStore({ prefix: 'test:pas:' });
    const trail = openPostgres({ url: db.database.serviceUrl('pas') });
    const checks = readinessWithTrail(store, createAuditLog({ db: trail, store, service: 'pas', logger: silentLogger }));
    expect(checks.map((c) => c.name)).toEqual(['store', 'audit']);
    const outcome = () =>
      Promise.all(
        checks.map((c) =>
          c.check().then(
            () => 'ok',
            () => 'failed',
          ),
        ),
      );
    expect(await outcome()).toEqual(['ok', 'ok']);
    await trail.close();
    expect(await outcome()).toEqual(['ok', 'failed']);
    await store.close();
    expect(await outcome()).toEqual(['failed', 'failed']);
  });
});
