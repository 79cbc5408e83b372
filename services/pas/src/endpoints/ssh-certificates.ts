import { Router, type Request } from 'express';
import { audited, mergeFields, requestFields, type AuditScope } from '@keyway/audit';
import { pasRoutes, SshCertificateResponse, sshUserKeyId } from '@keyway/contracts';
import {
  AccessDenied,
  bindRoute,
  callerService,
  DpopRefused,
  dpopGuardOnDemand,
  InvalidRequest,
  InvalidToken,
  requireBodyType,
  shapeResponse,
  TemporarilyUnavailable,
  type DpopGuardOptions,
} from '@keyway/kit';
import { isKeyType, parsePublicKeyLine, SSH_KEY_TYPES, SshFormatError, type SshPublicKey } from '@keyway/ssh';
import { DPOP_ALGS, type AccessTokenCheck } from '@keyway/tokens';
import type { GrantContext } from '../grants/context.ts';
import type { IssuedSshCertificate, SshCertificateAuthority } from '../ssh/authority.ts';
import { sourceOf } from '../throttling/login-throttle.ts';
import { ownAccessTokenChecker } from '../tokens/own-tokens.ts';
import { noStore } from './token.ts';

/** RFC 6750 §2.1 and RFC 9449 §7.1: `Bearer <token>`, or `DPoP <token>` for a bound one. */
const AUTHORIZATION = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i;
const challenge = (attributes?: string) => ({ 'WWW-Authenticate': `Bearer realm="keyway"${attributes ? `, ${attributes}` : ''}, DPoP algs="${DPOP_ALGS.join(' ')}"` });

export interface SshCertificateOptions {
  ca: SshCertificateAuthority;
  /** SSH_CERT_TTL_SEC */
  userTtlSec: number;
  /** SSH_HOST_CERT_TTL_SEC */
  hostTtlSec: number;
  /** SSH_HOST_CERT_NAMES: the only principals a host certificate may carry */
  hostNames: string[];
  /** RFC 9449 at PAS, as at the token endpoint (same nonces) */
  dpop: Omit<DpopGuardOptions, 'resource'>;
}

/** The public key line to certify: one of the key types Keyway's SSH stack verifies (no RSA: no SHA-1 signatures, no 2048-bit keys), parsed, or 400 invalid_request saying why not. */
function certifiable(line: string): SshPublicKey {
  const type = line.split(' ', 1)[0] ?? '';
  if (!isKeyType(type)) throw new InvalidRequest(`public_key: ${type.slice(0, 64)} keys are not certified; use ${SSH_KEY_TYPES.join(' or ')}`);
  try {
    return parsePublicKeyLine(line);
  } catch (err) {
    if (err instanceof SshFormatError) throw new InvalidRequest(`public_key: ${err.message}`);
    throw err;
  }
}

/** What the trail holds of a certificate: its serial, the certified key's fingerprint, principals, window end (never the certificate). */
const noteIssued = (audit: AuditScope, issued: IssuedSshCertificate) =>
  audit.note({
    detail: { serial: issued.serial, fingerprint: issued.fingerprint, key_id: issued.key_id.slice(0, 256), principals: issued.principals.join(',').slice(0, 512), valid_before: issued.valid_before },
  });

const answer = (issued: IssuedSshCertificate) => shapeResponse(SshCertificateResponse, issued);

/**
 * The Keyway SSH CA (issue 17):
 * - GET /.well-known/ssh-ca.pub: its public key line, for `@cert-authority` lines and TrustedUserCAKeys;
 * - POST /v1/ssh/certificates: an access token PAS issued (any scope, while active: tokens/own-tokens.ts
 *   isActive; a DPoP-bound one with its proof) is traded for a user certificate valid for minutes, with
 *   the user id as its one principal and `keyway:<tenant>:<user id>` as its key id. The SFTP server
 *   authorizes every operation itself, so no role is asked for here; revocation is the short lifetime.
 *   Refusals that name nobody (no token, a bad one) are noise (issue 9), as at the token endpoint;
 *   the rest are ssh.certificate_refused;
 * - POST /internal/v1/ssh/host-certificates (the releases service's certificate only): a host
 *   certificate for the SFTP server's host key, so clients pin the CA instead of trusting on first use.
 */
export function sshCertificateEndpoints(context: GrantContext, options: SshCertificateOptions): Router {
  const router = Router();
  const tokens = ownAccessTokenChecker(context);
  const dpop = dpopGuardOnDemand({ ...options.dpop, resource: true });
  const caLine = `${options.ca.publicKeyLine}\n`;

  bindRoute(router, pasRoutes.sshCaPublicKey, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').type('text/plain').send(caLine);
  });

  /** The caller's access token, verified and active, and its proof when it is bound (noted on the trail as it is learnt). */
  const authenticate = async (req: Request, audit: AuditScope) => {
    const authorization = req.get('authorization');
    if (authorization === undefined) throw new InvalidToken('authentication is required: an access token from PAS (Authorization: Bearer or DPoP)', 'no credentials', challenge());
    const token = AUTHORIZATION.exec(authorization)?.[2];
    if (!token) throw new InvalidToken('the Authorization header is not a Bearer or DPoP token', 'malformed Authorization header', challenge('error="invalid_token"'));
    let check: AccessTokenCheck;
    try {
      check = await tokens(token);
    } catch (err) {
      // fail closed (style rule 10): a token that cannot be checked is not accepted
      throw new TemporarilyUnavailable('the token cannot be checked right now; retry later', String(err), { 'Retry-After': '5' });
    }
    if (!check.active) throw new InvalidToken('the access token is invalid, expired or revoked', check.reason, challenge('error="invalid_token"'));
    const { claims } = check;
    audit.note({ tenant: claims.tid, subject: claims.sub, tokenId: claims.jti, clientId: claims.client_id });
    // RFC 9449 §7: a bound token is of use only with a proof by its key, naming this request and the token (ath)
    const guard = await dpop();
    await guard.check(req, { credential: token, jkt: claims.cnf?.jkt }).catch((err: unknown) => {
      if (err instanceof DpopRefused && err.code === 'use_dpop_nonce') throw audit.refuse(err, 'dpop.nonce_required', { noise: true });
      throw err;
    });
    return claims;
  };

  bindRoute(router, pasRoutes.sshCertificate, noStore, requireBodyType(pasRoutes.sshCertificate), async (req, res, input) => {
    const source = sourceOf(req);
    const issued = await audited(
      context,
      {
        action: 'ssh.certificate_issued',
        fields: requestFields(req),
        refusal: () => ({ action: 'ssh.certificate_refused' }),
        noise: { gate: context.noise, source },
      },
      async (audit) => {
        // Issue 9: a source past its limit of unauthenticated refusals is refused before any work.
        await context.noise.admit(source);
        const claims = await authenticate(req, audit);
        const publicKey = certifiable(input.body().public_key);
        const certificate = options.ca.issue({
          publicKey,
          type: 'user',
          keyId: sshUserKeyId(claims.tid, claims.sub),
          principals: [claims.sub],
          ttlSec: options.userTtlSec,
          now: context.settings.now?.(),
        });
        noteIssued(audit, certificate);
        return certificate;
      },
    );
    (await dpop()).offerNonce(res);
    res.status(201).json(answer(issued));
  });

  bindRoute(router, pasRoutes.hostCertificate, noStore, requireBodyType(pasRoutes.hostCertificate), async (req, res, input) => {
    const caller = callerService(req);
    const issued = await audited(context, { action: 'ssh.host_certificate_issued', fields: mergeFields(requestFields(req), { clientId: caller }), authenticated: true }, async (audit) => {
      const { public_key, hostnames } = input.body();
      const foreign = hostnames.filter((name) => !options.hostNames.includes(name));
      if (foreign.length > 0) {
        throw audit.refuse(
          new AccessDenied(`PAS certifies hosts only as ${options.hostNames.join(', ') || '(no name: SSH_HOST_CERT_NAMES is empty)'}; not ${foreign.join(', ').slice(0, 512)}`, 'host_name'),
          'ssh.host_certificate_refused',
          { reason: 'host_name' },
        );
      }
      const certificate = options.ca.issue({
        publicKey: certifiable(public_key),
        type: 'host',
        keyId: `keyway-host:${caller}`,
        principals: hostnames,
        ttlSec: options.hostTtlSec,
        now: context.settings.now?.(),
      });
      noteIssued(audit, certificate);
      return certificate;
    });
    res.status(201).json(answer(issued));
  });
  return router;
}
