import { AuditEvent as AuditEventSchema } from '@keyway/contracts';
import { silentLogger } from '@keyway/kit';
import { createMemoryStore } from '@keyway/store';
import type { Meter } from '@opentelemetry/api';
import { connectTestDatabase } from '@keyway/testkit';
import { describe, expect, it } from 'vitest';
import { createAuditLog } from './audited.ts';
import { canonicalJson, eventHash } from './chain.ts';
import { AuditEventError } from './errors.ts';
import { auditEvent, looksSecret, tokenHash } from './event.ts';
import { auditMetrics } from './metrics.ts';

const NOW = Date.parse('2026-03-04T05:06:07.089Z');

describe('auditEvent', () => {
  it('adds a time-sortable id and the time, and drops undefined fields', () => {
    const draft = auditEvent({ service: 'pas', action: 'grant.success', outcome: 'success', tenant: 'acme', subject: undefined }, NOW);
    expect(draft).toEqual({ id: expect.stringMatching(/^[0-9A-HJKMNP-TV-Z]{26}$/), time: '2026-03-04T05:06:07.089Z', service: 'pas', action: 'grant.success', outcome: 'success', tenant: 'acme' });
    expect('subject' in draft).toBe(false);
    const later = auditEvent({ service: 'pas', action: 'grant.success', outcome: 'success' }, NOW + 1);
    expect(later.id > draft.id).toBe(true);
    expect(later.id.slice(0, 10) > draft.id.slice(0, 10)).toBe(true);
  });

  it.each([
    ['an action that is not noun.verb', { action: 'GrantSuccess' }, /action/],
    ['an unknown outcome', { outcome: 'maybe' }, /outcome/],
    ['a control character', { reason: 'line\nbreak' }, /reason/],
    ['an unknown field', { colour: 'blue' }, /colour/],
    ['a detail key with spaces', { detail: { 'a b': 'x' } }, /detail/],
    ['a bad stream name', { service: 'PAS' }, /service/],
  ])('refuses %s', (_, change, message) => {
    const input = { service: 'pas', action: 'grant.success', outcome: 'success', ...change } as Parameters<typeof auditEvent>[0];
    expect(() => auditEvent(input, NOW)).toThrow(AuditEventError);
    expect(() => auditEvent(input, NOW)).toThrow(message);
  });

  it('refuses secret-named fields and credential-looking values, naming the field but never echoing the value', () => {
    const jwt = 'eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJ4In0.AAAA';
    const cases: Record<string, unknown>[] = [
      { client_secret: 'shh-its-a-secret' },
      { assertion: 'x' },
      { detail: { password: 'hunter2' } },
      { detail: { sig: 'abc' } },
      { detail: { authorization: 'x' } },
      { tokenId: jwt },
      { subject: `Bearer ${jwt}` },
      { detail: { pem: '-----BEGIN PRIVATE KEY-----\nMII...' } },
    ];
    for (const extra of cases) {
      const input = { service: 'pas', action: 'grant.success', outcome: 'success', ...extra } as Parameters<typeof auditEvent>[0];
      const err = (() => {
        try {
          auditEvent(input, NOW);
        } catch (e) {
          return e as Error;
        }
      })();
      expect(err).toBeInstanceOf(AuditEventError);
      expect(err?.message).not.toMatch(/hunter2|shh-its|eyJ|MII/);
    }
  });

  it('accepts ids: a jti, a SAS key id, a token HMAC', () => {
    for (const tokenId of ['2f1c6b1e-4f0e-4a8e-9a0b-1b2c3d4e5f60', 'acme/edr-events/01JABCDEF', tokenHash('any token', 'k'.repeat(32))]) {
      expect(auditEvent({ service: 'pac', action: 'sas_key.minted', outcome: 'success', tokenId }, NOW).tokenId).toBe(tokenId);
    }
  });
});

describe('looksSecret', () => {
  it('recognises tokens, SAS keys, bearer headers and private keys, not ordinary ids', () => {
    expect(looksSecret('eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln')).toBe(true);
    expect(looksSecret('SharedAccessSignature sr=https%3A%2F%2Ft&sig=abc&se=1&skn=listen')).toBe(true);
    expect(looksSecret('https://topic.example/x?sig=abc')).toBe(true);
    expect(looksSecret('bearer abc.def')).toBe(true);
    expect(looksSecret('-----BEGIN EC PRIVATE KEY-----')).toBe(true);
    for (const ordinary of ['invalid_grant', 'role_missing', 'acme', '2f1c6b1e-4f0e-4a8e-9a0b-1b2c3d4e5f60', 'refresh_token', 'signature', 'design.md']) {
      expect(looksSecret(ordinary)).toBe(false);
    }
  });
});

describe('tokenHash', () => {
  it('is a keyed HMAC-SHA256: stable per key, different across keys, never the token', () => {
    const a = tokenHash('the-token', 'a'.repeat(32));
    expect(a).toMatch(/^hmac-sha256:[A-Za-z0-9_-]{43}$/);
    expect(tokenHash('the-token', 'a'.repeat(32))).toBe(a);
    expect(tokenHash('the-token', 'b'.repeat(32))).not.toBe(a);
    expect(a).not.toContain('the-token');
  });

  it('refuses a short key', () => {
    expect(() => tokenHash('t', 'short')).toThrow(TypeError);
  });
});

describe('canonicalJson and eventHash', () => {
  it('serializes independent of key order and leaves out undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: 'x', c: undefined, b: ['z', 1] } })).toBe('{"a":{"b":["z",1],"d":"x"},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  });

  it('hashes the canonical form with SHA-256, so field order does not matter but every field does', () => {
    const event = { ...auditEvent({ service: 'pas', action: 'grant.success', outcome: 'success' }, NOW), seq: 1, prevHash: '0'.repeat(64) };
    const reordered = Object.fromEntries(Object.entries(event).reverse()) as typeof event;
    expect(eventHash(reordered)).toBe(eventHash(event));
    expect(eventHash(event)).toMatch(/^[0-9a-f]{64}$/);
    expect(eventHash({ ...event, seq: 2 })).not.toBe(eventHash(event));
    expect(eventHash({ ...event, prevHash: '1'.repeat(64) })).not.toBe(eventHash(event));
    expect(AuditEventSchema.safeParse({ ...event, hash: eventHash(event) }).success).toBe(true);
  });
});

describe('auditMetrics', () => {
  it('counts appended events by service, action and outcome', async () => {
    const adds: [string, number, unknown][] = [];
    const meter = { createCounter: (name: string) => ({ add: (n: number, attrs: unknown) => adds.push([name, n, attrs]) }) } as unknown as Meter;
    const db = await connectTestDatabase();
    const audit = createAuditLog({ db: db.as('pac'), store: createMemoryStore({ prefix: 'pac:' }), service: 'pac', logger: silentLogger, metrics: auditMetrics(meter) });
    await audit.record({ action: 'sas_key.minted', outcome: 'success', tenant: 'acme' });
    await audit.record({ action: 'authorization.denied', outcome: 'denied', tenant: 'acme' });
    await db.close();
    expect(adds).toEqual([
      ['keyway.audit.events', 1, { service: 'pac', action: 'sas_key.minted', outcome: 'success' }],
      ['keyway.audit.events', 1, { service: 'pac', action: 'authorization.denied', outcome: 'denied' }],
    ]);
  });
});
