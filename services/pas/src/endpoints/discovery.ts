import { Router } from 'express';
import { Discovery, OPERATOR_SCOPE, pasRoutes, RELEASES_SCOPE } from '@keyway/contracts';
import { bindRoute, shapeResponse } from '@keyway/kit';
import { DPOP_ALGS, SIGNING_ALG } from '@keyway/tokens';
import { grants } from '../grants/index.ts';

/**
 * GET /.well-known/openid-configuration with the RFC 8414 fields. scopes_supported names the fixed
 * scopes once releases are offered (RELEASES_AUDIENCE); "feed:<name>" values differ per tenant and
 * are not listed (RFC 8414 §2: a server may leave some out). The SSH CA's key and certificate endpoint
 * are Keyway extensions (RFC 8414 §2 allows more fields).
 */
export function discoveryEndpoint(issuer: string, releasesOffered: boolean, sshCaPublicKey: string): Router {
  const router = Router();
  const base = issuer.replace(/\/+$/, '');
  const document = shapeResponse(Discovery, {
    issuer,
    authorization_endpoint: `${base}${pasRoutes.authorize.path}`,
    token_endpoint: `${base}${pasRoutes.token.path}`,
    jwks_uri: `${base}${pasRoutes.jwks.path}`,
    revocation_endpoint: `${base}${pasRoutes.revoke.path}`,
    introspection_endpoint: `${base}${pasRoutes.introspect.path}`,
    grant_types_supported: Object.keys(grants),
    response_types_supported: ['code'],
    // RFC 7636 §4.2: plain is refused (RFC 9700 §2.1.1)
    code_challenge_methods_supported: ['S256'],
    // RFC 9207 §3: every authorization response carries iss
    authorization_response_iss_parameter_supported: true,
    token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['ES256', 'EdDSA'],
    id_token_signing_alg_values_supported: [SIGNING_ALG],
    subject_types_supported: ['public'],
    // RFC 9449 §5.1: the algorithms PAS accepts DPoP proofs in (the same allow-list PAC and topic use)
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
    ...(releasesOffered && { scopes_supported: [OPERATOR_SCOPE, RELEASES_SCOPE] }),
    keyway_ssh_ca_public_key: sshCaPublicKey,
    keyway_ssh_certificate_endpoint: `${base}${pasRoutes.sshCertificate.path}`,
  });
  bindRoute(router, pasRoutes.discovery, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').json(document);
  });
  return router;
}
