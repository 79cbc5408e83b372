import { Router } from 'express';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { idpRoutes, PasskeyAuthenticationOptions, PasskeyRegistrationOptions, PasskeySubject, RegisteredPasskey } from '@keyway/contracts';
import { bindRoute, InvalidGrant, InvalidRequest, NotFound, requireBodyType, shapeResponse } from '@keyway/kit';
import type { InternalChanges } from '../credentials/internal-changes.ts';
import { CHALLENGE_TTL_MS, challengeOf, userHandle, type EnrolmentWindows, type PasskeyChallenges, type PasskeyRepository } from '../credentials/passkeys.ts';
import type { CredentialRepository } from '../credentials/repository.ts';
import type { VerificationGuard } from '../credentials/verification-guard.ts';

/** The relying party (WebAuthn §5.1.4.1 rp): PAS's public origin, where the login page runs; its host is the RP ID. */
export interface RelyingParty {
  origin: string;
  rpId: string;
  name: string;
}

/** The challenge as bytes: a string would be taken as UTF-8 text and encoded once more (the options carry base64url of the bytes). */
const challengeBytes = (challenge: string): Uint8Array<ArrayBuffer> => new Uint8Array(Buffer.from(challenge, 'base64url'));

const INVALID_REGISTRATION = 'the passkey registration is not valid; start again';
const INVALID_PASSKEY = 'the passkey sign-in is not valid';

/**
 * The four passkey routes (PAS only): registration options and verification for a person PAS has
 * just authenticated (the IdP verified their password within ENROLMENT_WINDOW_MS), and usernameless authentication (discoverable credentials). User verification
 * is required both ways, so a passkey is two factors on its own (amr hwk + mfa). Every refusal of a
 * response is 400 invalid_grant, its reason in the log only; failed sign-ins are counted and written
 * to the trail like failed passwords (credentials.verification_failed), registrations as passkey.registered.
 */
export function passkeyRoutes(deps: {
  credentials: CredentialRepository;
  passkeys: PasskeyRepository;
  challenges: PasskeyChallenges;
  /** who verified their password here just now: only they may enrol */
  enrolment: EnrolmentWindows;
  guard: VerificationGuard;
  changes: InternalChanges;
  relyingParty: RelyingParty | undefined;
}): Router {
  const { credentials, passkeys, challenges, guard, changes } = deps;
  const router = Router();
  const rp = (): RelyingParty => {
    if (!deps.relyingParty) throw new InvalidRequest('passkeys are not offered here', 'PASSKEY_ORIGIN and PAS_URL are unset');
    return deps.relyingParty;
  };

  bindRoute(router, idpRoutes.passkeyRegistrationOptions, requireBodyType(idpRoutes.passkeyRegistrationOptions), async (_req, res, input) => {
    const { rpId, name } = rp();
    const { sub } = input.body();
    const account = await credentials.findBySub(sub);
    if (!account) throw new NotFound(`no credentials are registered for ${sub}`);
    if (!(await deps.enrolment.isOpen(sub))) throw new InvalidGrant('a passkey is enrolled right after a password sign-in only', 'no password verification of this account in the enrolment window');
    const existing = await passkeys.listBySub(sub);
    const options = await generateRegistrationOptions({
      rpName: name,
      rpID: rpId,
      userName: account.email,
      userID: userHandle(sub),
      challenge: challengeBytes(await challenges.issue({ kind: 'registration', sub })),
      timeout: CHALLENGE_TTL_MS,
      attestationType: 'none',
      // WebAuthn §5.4.3: the authenticator refuses to make a second credential for this account
      excludeCredentials: existing.map((p) => ({ id: p.credentialId, transports: p.transports as AuthenticatorTransportFuture[] })),
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
    });
    res.json(shapeResponse(PasskeyRegistrationOptions, { options: { ...options }, registered: existing.length }));
  });

  bindRoute(router, idpRoutes.passkeyRegistration, requireBodyType(idpRoutes.passkeyRegistration), async (req, res, input) => {
    const { origin, rpId } = rp();
    const { sub, credential } = input.body();
    const challenge = challengeOf(credential.response.clientDataJSON);
    const ceremony = challenge === undefined ? undefined : await challenges.take(challenge);
    if (!challenge || ceremony?.kind !== 'registration' || ceremony.sub !== sub)
      throw new InvalidGrant(INVALID_REGISTRATION, 'unknown, expired or used registration challenge, or one issued for another account');
    const verified = await verifyRegistrationResponse({
      response: credential as RegistrationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: origin,
      expectedRPID: rpId,
      requireUserVerification: true,
    }).catch((err: unknown) => {
      throw new InvalidGrant(INVALID_REGISTRATION, `registration: ${err instanceof Error ? err.message : String(err)}`);
    });
    if (!verified.verified) throw new InvalidGrant(INVALID_REGISTRATION, 'registration not verified');
    const { credential: made } = verified.registrationInfo;
    await changes.change(req, 'passkey.registered', async (step) => {
      const account = await credentials.findBySub(sub);
      if (!account) throw new NotFound(`no credentials are registered for ${sub}`);
      const transports = (made.transports ?? []).slice(0, 8);
      if (!(await passkeys.add({ credentialId: made.id, sub, publicKey: made.publicKey, signCount: made.counter, transports }))) {
        throw new InvalidRequest('this passkey is registered already, or the account has as many passkeys as it may hold', 'duplicate credential id or passkey limit');
      }
      // the credential id names the key in the trail (a public identifier); the public key itself stays out
      step.note({ tenant: account.tenant, subject: sub, detail: { credential_id: made.id.slice(0, 43), transports: transports.join(' ') || 'none' } });
    });
    res.status(201).json(shapeResponse(RegisteredPasskey, { sub, credential_id: made.id }));
  });

  bindRoute(router, idpRoutes.passkeyAuthenticationOptions, async (_req, res) => {
    const { rpId } = rp();
    const options = await generateAuthenticationOptions({
      rpID: rpId,
      challenge: challengeBytes(await challenges.issue({ kind: 'authentication' })),
      timeout: CHALLENGE_TTL_MS,
      userVerification: 'required',
      // usernameless: no allowCredentials, the authenticator offers the discoverable credentials it holds for this RP
    });
    res.json(shapeResponse(PasskeyAuthenticationOptions, { options: { ...options } }));
  });

  bindRoute(router, idpRoutes.passkeyAuthentication, requireBodyType(idpRoutes.passkeyAuthentication), async (_req, res, input) => {
    const { origin, rpId } = rp();
    const { credential } = input.body();
    // usernameless: failures are counted under the credential the assertion claims to be from
    const claimed = `passkey:${credential.id.slice(0, 43)}`;
    await guard.admit(claimed);
    const refuse = async (detail: string): Promise<never> => {
      await guard.failed(claimed, 'invalid_passkey');
      throw new InvalidGrant(INVALID_PASSKEY, detail);
    };
    // the challenge first and once: a replayed assertion finds it taken, whatever else it carries
    const challenge = challengeOf(credential.response.clientDataJSON);
    const ceremony = challenge === undefined ? undefined : await challenges.take(challenge);
    if (!challenge || ceremony?.kind !== 'authentication') return refuse('unknown, expired or used authentication challenge');
    const stored = await passkeys.find(credential.id);
    if (!stored) return refuse('unknown credential');
    const account = await credentials.findBySub(stored.sub);
    if (!account) return refuse('the credential’s account has no credentials any more');
    // §7.2 step 6: the user handle, when given, is the one the credential was made for
    if (credential.response.userHandle !== undefined && credential.response.userHandle !== Buffer.from(userHandle(stored.sub)).toString('base64url')) return refuse('user handle mismatch');
    const verified = await verifyAuthenticationResponse({
      response: credential as AuthenticationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: origin,
      expectedRPID: rpId,
      credential: { id: stored.credentialId, publicKey: stored.publicKey, counter: stored.signCount, transports: stored.transports as AuthenticatorTransportFuture[] },
      requireUserVerification: true,
    }).catch((err: unknown) => refuse(`assertion: ${err instanceof Error ? err.message : String(err)}`));
    if (!verified.verified) return refuse('assertion not verified');
    if (!(await passkeys.used(stored.credentialId, stored.signCount, verified.authenticationInfo.newCounter))) return refuse('the sign count changed meanwhile (a concurrent sign-in)');
    const authentication = { amr: ['hwk' as const, 'mfa' as const], auth_time: Math.floor(Date.now() / 1000) };
    res.json(shapeResponse(PasskeySubject, { ...account, authentication }));
  });
  return router;
}
