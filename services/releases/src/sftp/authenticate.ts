import type { AuditFields, AuditLog } from '@keyway/audit';
import { parseSshUserKeyId } from '@keyway/contracts';
import { OAuthError, type Logger } from '@keyway/kit';
import { fingerprint, isCertificateType, isKeyType, publicKeyFromBlob, publicKeyLine, SshCertificateError, SshFormatError, verifyCertificate, verifySignature } from '@keyway/ssh';
import ssh2, { type AuthContext, type ParsedKey, type PublicKeyAuthContext } from 'ssh2';
import type { SftpCaller } from './session.ts';
import type { UserCaTrust } from './trust.ts';

/** The IdP's answer for a key registered for a user (idpClient.verifySshKey). */
type RegisteredKeyCheck = (sub: string, publicKeyLine: string) => Promise<{ sub: string; tenant: string; kid: string }>;

export interface AuthenticateDeps {
  trust: UserCaTrust;
  registeredKey: RegisteredKeyCheck;
  audit: AuditLog;
  logger: Logger;
  now: () => Date;
  /** CLOCK_TOLERANCE_SEC: a certificate's window is stretched by this much at both ends, as tokens' are */
  clockToleranceSec: number;
}

/** A plain key offered without a signature: taken for now, checked when it is signed. */
const PROVISIONAL = Symbol('provisional');

/** Why a login was refused, as the trail records it. */
type LoginRefusal = { reason: string; detail?: Record<string, string> };

/**
 * SSH public-key authentication (RFC 4252 §7), nothing else (no password, no keyboard-interactive):
 * 1. an OpenSSH user certificate from Keyway's CA (PAS): signed by a CA key PAS publishes, inside its
 *    window, the SSH user name among its principals (the user id), tenant and user from its signed key id;
 * 2. else a plain key the IdP holds for that user (the keys agents use for private_key_jwt).
 * In both the client proves the private key by its signature over the session id; ssh2 hands us the
 * signed blob and we verify it here (ssh2 leaves it to the server). The certificate type's signature
 * is named by the key type inside it (PROTOCOL.certkeys), which verifySignature checks.
 * Successes are sftp.login events; refusals are login.failed, within the trail's noise budget (the caller proved nothing).
 */
export function authenticator(deps: AuthenticateDeps) {
  const { audit, logger } = deps;

  async function certificateCaller(ctx: PublicKeyAuthContext, fields: AuditFields): Promise<SftpCaller | LoginRefusal> {
    let certificate: ReturnType<typeof verifyCertificate>;
    try {
      certificate = verifyCertificate(ctx.key.data, { trusted: await deps.trust.keys(), type: 'user', principal: ctx.username, now: deps.now(), skewSec: deps.clockToleranceSec });
    } catch (err) {
      if (err instanceof SshCertificateError) {
        // a CA rotated at PAS since we last asked: look once more before refusing
        if (err.reason === 'untrusted_ca' && (await deps.trust.refresh())) return certificateCaller(ctx, fields);
        return { reason: `certificate_${err.reason}`, detail: { error_detail: err.message } };
      }
      throw err;
    }
    const holder = parseSshUserKeyId(certificate.keyId);
    if (!holder || holder.sub !== ctx.username) return { reason: 'certificate_key_id', detail: { key_id: certificate.keyId.slice(0, 256) } };
    if (ctx.signature && ctx.blob && !verifySignature(certificate.publicKey, ctx.blob, ctx.signature)) return { reason: 'bad_signature' };
    return {
      principal: { sub: holder.sub, tenant: holder.tenant, roles: [], tokenId: `ssh-cert:${certificate.serial}` },
      fields: {
        ...fields,
        tenant: holder.tenant,
        tokenId: `ssh-cert:${certificate.serial}`,
        detail: { ...fields.detail, auth: 'certificate', serial: String(certificate.serial), fingerprint: fingerprint(certificate.publicKey) },
      },
      validBefore: certificate.validBefore,
    };
  }

  async function registeredKeyCaller(ctx: PublicKeyAuthContext, fields: AuditFields): Promise<SftpCaller | LoginRefusal | typeof PROVISIONAL> {
    let key: ReturnType<typeof publicKeyFromBlob>;
    try {
      key = publicKeyFromBlob(ctx.key.data);
    } catch (err) {
      if (err instanceof SshFormatError) return { reason: 'malformed_key' };
      throw err;
    }
    if (key.type !== ctx.key.algo) return { reason: 'malformed_key' };
    // "would you take this key?" is answered yes without asking the IdP: only a client that holds the
    // private key (its signature verifies) reaches the IdP, so strangers cannot spend a user's IdP
    // failure budget (and lock their SSH logins) by offering random keys under their name
    if (!ctx.signature) return PROVISIONAL;
    // ssh2 hands a plain key's signature unframed (ECDSA as DER): its own key parser verifies it, as its docs do
    const parsed = ssh2.utils.parseKey(ctx.key.data);
    if (parsed instanceof Error) return { reason: 'malformed_key' };
    if (!ctx.blob || (parsed as ParsedKey).verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return { reason: 'bad_signature' };
    try {
      const held = await deps.registeredKey(ctx.username, publicKeyLine(key));
      const keyFields = { ...fields.detail, auth: 'registered_key', kid: held.kid, fingerprint: fingerprint(key) };
      return { principal: { sub: held.sub, tenant: held.tenant, roles: [], tokenId: `ssh-key:${fingerprint(key)}` }, fields: { ...fields, tenant: held.tenant, detail: keyFields } };
    } catch (err) {
      if (err instanceof OAuthError && err.status < 500) return { reason: 'key_not_registered', detail: { fingerprint: fingerprint(key) } };
      throw err;
    }
  }

  /** ssh2's 'authentication' listener: accepts, or refuses offering publickey again. */
  return (ctx: AuthContext, fields: AuditFields, accept: (caller: SftpCaller) => void): void => {
    if (ctx.method !== 'publickey') {
      ctx.reject(['publickey']);
      return;
    }
    const algo = ctx.key.algo;
    const certified = isCertificateType(algo);
    if (!certified && !isKeyType(algo)) {
      ctx.reject(['publickey']);
      return;
    }
    const named = { ...fields, subject: ctx.username, detail: { ...fields.detail, key_type: algo } };
    (certified ? certificateCaller(ctx, named) : registeredKeyCaller(ctx, named))
      .then(async (outcome) => {
        if (outcome === PROVISIONAL || (!ctx.signature && 'principal' in outcome)) {
          ctx.accept();
          return;
        }
        if (!('principal' in outcome)) {
          // OpenSSH asks "would you take this key?" unsigned first and signs only keys taken, so a certificate's
          // refusal is recorded then. The caller proved nothing yet: within the trail's noise budget (issue 9)
          await audit.recordBounded({ ...named, detail: { ...named.detail, ...outcome.detail }, action: 'login.failed', outcome: 'denied', reason: outcome.reason });
          ctx.reject(['publickey']);
          return;
        }
        await audit.record({ ...outcome.fields, subject: outcome.principal.sub, action: 'sftp.login', outcome: 'success' });
        accept(outcome);
        ctx.accept();
      })
      .catch((err: unknown) => {
        // fail closed: a key that cannot be checked now (the IdP, PAS or the trail down) is not accepted
        logger.warn('sftp.login_unavailable', { err: err instanceof Error ? err.message : String(err) });
        ctx.reject(['publickey']);
      });
  };
}
