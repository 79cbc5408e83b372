import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICES, startSuite, type ServiceName, type Suite } from '@keyway/testkit';
import { rawClient } from '../helpers.ts';

// Issue 9 (Low): security headers on every service (helmet in the kit's base app), not only the console.
let suite: Suite;
beforeAll(async () => {
  suite = await startSuite();
});
afterAll(() => suite?.close());

function expectSecurityHeaders(headers: Record<string, unknown>, where: string) {
  expect({ where, hsts: headers['strict-transport-security'] }).toEqual({ where, hsts: expect.stringMatching(/max-age=\d{7,}/) });
  expect({ where, nosniff: headers['x-content-type-options'] }).toEqual({ where, nosniff: 'nosniff' });
  expect({ where, frame: headers['x-frame-options'] }).toEqual({ where, frame: 'DENY' });
  expect({ where, csp: headers['content-security-policy'] }).toEqual({ where, csp: expect.stringContaining("frame-ancestors 'none'") });
  expect({ where, referrer: headers['referrer-policy'] }).toEqual({ where, referrer: 'no-referrer' });
  expect({ where, poweredBy: headers['x-powered-by'] }).toEqual({ where, poweredBy: undefined });
}

describe('issue 9: security headers on every service', () => {
  it.each(SERVICES)('%s answers them on success, 404, refusals and unparsable bodies', async (service: ServiceName) => {
    const http = rawClient(suite, service);
    const ok = await http.get('/healthz');
    expect(ok.status).toBe(200);
    const notFound = await http.get('/no/such/endpoint');
    expect(notFound.status).toBe(404);
    const malformed = await http.post('/no/such/endpoint', '{"oops": ', { headers: { 'content-type': 'application/json' } });
    // the topic service reads a body only after the SAS key checked out (issue 9), so nothing parses it here
    expect(malformed.status).toBe(service === 'topic' ? 404 : 400);
    const document = await http.get('/openapi.json');
    expect(document.status).toBe(200);
    for (const [where, response] of Object.entries({ ok, notFound, malformed, document })) expectSecurityHeaders(response.headers, `${service} ${where}`);
  });

  it('the admin APIs answer them on an authentication refusal', async () => {
    const refused = await rawClient(suite, 'entitlement').get('/v1/tenants');
    expect(refused.status).toBe(401);
    expectSecurityHeaders(refused.headers, 'entitlement 401');
  });

  it('the console keeps its own stricter page policy', async () => {
    const page = await rawClient(suite, 'entitlement').get('/console/');
    expect(page.status).toBe(200);
    expectSecurityHeaders(page.headers, 'console');
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  });
});
