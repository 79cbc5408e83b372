import { describe, expect, it } from 'vitest';
import { PasEnv } from './config.ts';

const env = {
  KEYWAY_ENV: 'development',
  PUBLIC_URL: 'https://pas.example',
  ACCESS_AUDIENCE: 'https://pac.example',
  IDP_URL: 'https://idp.example',
  ENTITLEMENT_URL: 'https://entitlement.example',
  TLS_CERT_FILE: 'pas.crt',
  TLS_KEY_FILE: 'pas.key',
  TLS_CA_FILE: 'ca.crt',
};

describe('PAS configuration: DPoP (RFC 9449)', () => {
  it('requires nonces and no DPoP login by default; DPOP_REQUIRED_FOR names login grant types only', () => {
    expect(PasEnv.parse(env)).toMatchObject({ DPOP_REQUIRE_NONCE: true, DPOP_REQUIRED_FOR: [], DPOP_PROOF_WINDOW_SEC: 60 });
    expect(PasEnv.parse({ ...env, DPOP_REQUIRE_NONCE: 'false', DPOP_REQUIRED_FOR: 'client_credentials, password' })).toMatchObject({
      DPOP_REQUIRE_NONCE: false,
      DPOP_REQUIRED_FOR: ['client_credentials', 'password'],
    });
    // a refresh keeps its family's binding: requiring DPoP of it would be a second, conflicting rule
    const refused = PasEnv.safeParse({ ...env, DPOP_REQUIRED_FOR: 'refresh_token', DPOP_REQUIRE_NONCE: 'maybe' });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['DPOP_REQUIRED_FOR.0', 'DPOP_REQUIRE_NONCE']);
  });
});
