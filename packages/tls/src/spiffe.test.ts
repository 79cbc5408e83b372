import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createDevCa, issueCert, issueServiceCert, serviceInTrustDomain, spiffeId } from './index.ts';

describe('SPIFFE IDs of service certificates', () => {
  it('spiffeId builds spiffe://<trust domain>/<service> and refuses what would not parse back', () => {
    expect(spiffeId('keyway', 'pas')).toBe('spiffe://keyway/pas');
    expect(spiffeId('prod.example-1', 'operator')).toBe('spiffe://prod.example-1/operator');
    for (const [domain, name] of [
      ['Keyway', 'pas'],
      ['key way', 'pas'],
      ['', 'pas'],
      ['keyway', 'a/b'],
      ['keyway', ''],
      ['keyway', '..'],
    ] as const) {
      expect(() => spiffeId(domain, name)).toThrow();
    }
  });

  it('the service is the one URI SAN in the trust domain; the CN is never read', () => {
    const sans = (...entries: string[]) => ['DNS:localhost', 'IP Address:127.0.0.1', ...entries].join(', ');
    expect(serviceInTrustDomain(sans('URI:spiffe://keyway/pas'), 'keyway')).toBe('pas');
    expect(serviceInTrustDomain('URI:spiffe://keyway/operator', 'keyway')).toBe('operator');
    // no URI (a CN-only certificate), another trust domain, a longer path, two URIs, another scheme
    expect(serviceInTrustDomain(sans(), 'keyway')).toBeUndefined();
    expect(serviceInTrustDomain(undefined, 'keyway')).toBeUndefined();
    expect(serviceInTrustDomain(sans('URI:spiffe://other/pas'), 'keyway')).toBeUndefined();
    expect(serviceInTrustDomain(sans('URI:spiffe://keyway.evil/pas'), 'keyway')).toBeUndefined();
    expect(serviceInTrustDomain(sans('URI:spiffe://keyway/pas/extra'), 'keyway')).toBeUndefined();
    expect(serviceInTrustDomain(sans('URI:spiffe://keyway/pas', 'URI:spiffe://keyway/pac'), 'keyway')).toBeUndefined();
    expect(serviceInTrustDomain(sans('URI:https://keyway/pas'), 'keyway')).toBeUndefined();
    // Node JSON-quotes a value holding a comma: it cannot smuggle a second entry in
    expect(serviceInTrustDomain(sans('URI:"spiffe://keyway/pas, URI:spiffe://keyway/operator"'), 'keyway')).toBeUndefined();
    expect(serviceInTrustDomain('DNS:"a, URI:spiffe://keyway/operator"', 'keyway')).toBeUndefined();
    // text Node would never print: trusted for nothing
    expect(serviceInTrustDomain('URI:spiffe://keyway/pas, garbage', 'keyway')).toBeUndefined();
  });

  it('a certificate from the dev CA names what it was issued for, as Node reads it', () => {
    const ca = createDevCa();
    const service = new X509Certificate(issueServiceCert(ca, 'pac', { trustDomain: 'staging', leafHours: 3 }).certPem);
    expect(service.subject).toBe('CN=pac');
    expect(serviceInTrustDomain(service.subjectAltName, 'staging')).toBe('pac');
    expect(serviceInTrustDomain(service.subjectAltName, 'keyway')).toBeUndefined();
    const hours = (Date.parse(service.validTo) - Date.parse(service.validFrom)) / 3_600_000;
    expect(hours).toBeGreaterThan(3);
    expect(hours).toBeLessThan(3.1);
    // the CN alone names nobody
    const cnOnly = new X509Certificate(issueCert(ca, { commonName: 'pac' }).certPem);
    expect(serviceInTrustDomain(cnOnly.subjectAltName, 'keyway')).toBeUndefined();
  });
});
