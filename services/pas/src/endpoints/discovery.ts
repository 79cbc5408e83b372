import { Router } from 'express';
import { Discovery } from '@keyway/contracts';
import { shapeResponse } from '@keyway/kit';
import { SIGNING_ALG } from '@keyway/tokens';
import { grants } from '../grants/index.ts';

/** GET /.well-known/openid-configuration with the RFC 8414 fields. */
export function discoveryEndpoint(issuer: string): Router {
  const router = Router();
  const base = issuer.replace(/\/+$/, '');
  const document = shapeResponse(Discovery, {
    issuer,
    token_endpoint: `${base}/oauth2/token`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    revocation_endpoint: `${base}/oauth2/revoke`,
    introspection_endpoint: `${base}/oauth2/introspect`,
    grant_types_supported: Object.keys(grants),
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['ES256', 'EdDSA'],
    id_token_signing_alg_values_supported: [SIGNING_ALG],
    subject_types_supported: ['public'],
  });
  router.get('/.well-known/openid-configuration', (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').json(document);
  });
  return router;
}
