import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import { InvalidClient, InvalidGrant } from '@keyway/kit';
import { grantedAccess } from './authorize.ts';
import { authTimeNow, issuePair, type Grant } from './context.ts';
import { loginKey } from './dpop.ts';

const INVALID_CODE = 'the authorization code is invalid, expired or already used';
const REUSED = 'authorization_code_reused';

/** RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge, compared in constant time (style rule 14). */
function verifierMatches(verifier: string, challenge: string): boolean {
  const computed = createHash('sha256').update(verifier, 'ascii').digest();
  const expected = Buffer.from(challenge, 'base64url');
  return expected.length === computed.length && timingSafeEqual(computed, expected);
}

/**
 * RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5, §4.6): a registered browser client trades the code the
 * login page issued for the usual pair. The code is spent by the first attempt, whatever its outcome;
 * one presented again is refused and the tokens issued from it are revoked (RFC 6749 §4.1.2).
 */
export const authorization_code: Grant<'authorization_code'> = {
  grantType: 'authorization_code',
  issued: 'token.issued',
  async handler(params, context, origin, audit) {
    const revokeIssued = async (fid: string, tenant: string) => {
      if (!(await context.families.revoke(fid, REUSED))) return;
      context.metrics.tokensRevoked.add(1, { tenant, reason: REUSED });
      audit.also({ action: 'refresh_family.revoked', outcome: 'success', reason: REUSED });
    };
    // RFC 6749 §5.2: an unknown client is invalid_client; public clients present no credential, so this names nobody (noise)
    if (!context.browserClients.has(params.client_id)) throw new InvalidClient('unknown client_id', `client_id ${params.client_id.slice(0, 64)} is not a registered browser client`);
    audit.note({ clientId: params.client_id });
    // the proof before the code: a client told to fetch a nonce has not spent its single-use code
    const jkt = await loginKey(context, origin, audit, 'authorization_code');
    const taken = await context.codes.take(params.code);
    if (!taken) {
      const redemption = await context.codes.reuse(params.code);
      if (!redemption) throw new InvalidGrant(INVALID_CODE, 'unknown or expired code');
      audit.note({ subject: redemption.sub, tenant: redemption.tid, detail: { family: redemption.fid } });
      await revokeIssued(redemption.fid, redemption.tid);
      throw audit.refuse(new InvalidGrant(INVALID_CODE, 'code presented again: its tokens are revoked'), 'authorization_code.reuse_detected');
    }
    const { grant, id } = taken;
    audit.note({ subject: grant.sub, tenant: grant.tid, detail: { code_id: id } });
    // RFC 6749 §4.1.3: issued to this client, for this exact redirect_uri; RFC 7636 §4.6: the verifier
    if (grant.client_id !== params.client_id) throw new InvalidGrant(INVALID_CODE, 'the code was issued to another client');
    if (grant.redirect_uri !== params.redirect_uri) throw new InvalidGrant(INVALID_CODE, 'redirect_uri differs from the authorization request');
    if (!verifierMatches(params.code_verifier, grant.code_challenge)) throw new InvalidGrant(INVALID_CODE, 'code_verifier does not match the code_challenge');

    // What the login was authorized for moments ago (the code lives AUTHORIZATION_CODE_TTL_SEC); strict
    // mode checks it again at every refresh, like any pair.
    const fid = randomUUID();
    await context.codes.redeemed(params.code, { fid, sub: grant.sub, tid: grant.tid });
    const pair = await issuePair(
      context,
      audit,
      { sub: grant.sub, tid: grant.tid, roles: grant.roles, access: grantedAccess(grant.scope), rights: grant.rights, releases: grant.releases, client_id: grant.client_id },
      grant.authentication ?? { amr: ['pwd'], auth_time: authTimeNow(context.settings) },
      { fid, jkt },
    );
    if (await context.codes.reused(params.code)) {
      await revokeIssued(fid, grant.tid);
      throw new InvalidGrant(INVALID_CODE, 'code presented again while its tokens were issued: revoked');
    }
    return pair;
  },
};
