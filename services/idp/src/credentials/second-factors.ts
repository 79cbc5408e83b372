import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { base32Encode, matchTotp, newTotpSecret, otpauthUri } from '@keyway/kit';
import { seal, unseal, type Keyring } from '@keyway/seal';
import type { Store } from '@keyway/store';

/** How many recovery codes an enrolment gives, each 80 random bits (16 base32 letters). */
const RECOVERY_CODES = 10;
const RECOVERY_CODE_BYTES = 10;
/** a concurrent use of the same account's factor: read again and retry this often before refusing */
const CAS_ATTEMPTS = 5;

/**
 * One account's TOTP factor in the IdP's records (PostgreSQL, the IdP's role only): the secret sealed
 * under the KEK (as PAS's signing keys and PAC's SAS keys are), the last step accepted (RFC 6238 §5.2:
 * a code is accepted once), and the SHA-256 of each unused recovery code (80-bit random codes need no
 * slow hash: they cannot be guessed from their hash).
 */
const Factor = z.object({
  secret: z.string(),
  lastStep: z.number().int(),
  recovery: z.array(z.string()),
  enrolledAt: z.string(),
});
type Factor = z.infer<typeof Factor>;

export type CodeCheck = { ok: true; method: 'totp' | 'recovery'; recoveryLeft: number } | { ok: false; reason: 'no_second_factor' | 'wrong_code' | 'code_reused' };

const hashCode = (code: string): string => createHash('sha256').update(code).digest('hex');
/** "abcd-efgh-…" and "ABCDEFGH…" are the same recovery code: what a person copies or types */
const normalize = (code: string): string => code.replace(/[\s-]/g, '').toLowerCase();
const newRecoveryCode = (): string =>
  base32Encode(randomBytes(RECOVERY_CODE_BYTES))
    .toLowerCase()
    .replace(/(.{4})(?=.)/g, '$1-');

export function secondFactors(records: Store, kek: Keyring, options: { issuer: string; now?: () => number }) {
  const key = (sub: string) => `mfa:totp:${sub}`;
  const context = (sub: string) => `idp:totp:${sub}`;
  const now = options.now ?? Date.now;

  /** Constant-time over every stored hash: which one matched (if any) does not show in the timing. */
  const recoveryIndex = (factor: Factor, code: string): number => {
    const presented = Buffer.from(hashCode(normalize(code)));
    let found = -1;
    factor.recovery.forEach((stored, index) => {
      if (timingSafeEqual(presented, Buffer.from(stored)) && found < 0) found = index;
    });
    return found;
  };

  return {
    async enrolled(sub: string): Promise<boolean> {
      return (await records.get(key(sub))) !== null;
    },

    /**
     * Checks a code and spends it: a TOTP step later than the last accepted one (±1 step of now), or an
     * unused recovery code. Atomic per account (compare-and-set on its record), so one code is accepted
     * once even when two logins present it at the same moment.
     */
    async verify(sub: string, code: string): Promise<CodeCheck> {
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const raw = await records.get(key(sub));
        if (raw === null) return { ok: false, reason: 'no_second_factor' };
        const factor = Factor.parse(JSON.parse(raw));
        let next: Factor;
        let method: 'totp' | 'recovery';
        if (/^[0-9]{6}$/.test(code)) {
          const secret = await unseal(kek, factor.secret, context(sub));
          const step = matchTotp(secret, code, now());
          if (step === undefined) return { ok: false, reason: 'wrong_code' };
          if (step <= factor.lastStep) return { ok: false, reason: 'code_reused' };
          next = { ...factor, lastStep: step };
          method = 'totp';
        } else {
          const index = recoveryIndex(factor, code);
          if (index < 0) return { ok: false, reason: 'wrong_code' };
          next = { ...factor, recovery: factor.recovery.filter((_, i) => i !== index) };
          method = 'recovery';
        }
        if (await records.compareAndSet(key(sub), raw, JSON.stringify(next))) return { ok: true, method, recoveryLeft: next.recovery.length };
      }
      return { ok: false, reason: 'code_reused' };
    },

    /** A new secret and recovery codes, replacing any before; what the person sees once. */
    async enrol(sub: string, account: string): Promise<{ otpauthUri: string; secret: string; recoveryCodes: string[] }> {
      const secret = newTotpSecret();
      const recoveryCodes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
      const factor: Factor = {
        secret: await seal(kek, secret, context(sub)),
        lastStep: 0,
        recovery: recoveryCodes.map((code) => hashCode(normalize(code))),
        enrolledAt: new Date(now()).toISOString(),
      };
      await records.set(key(sub), JSON.stringify(factor));
      return { otpauthUri: otpauthUri({ issuer: options.issuer, account, secret }), secret: base32Encode(secret), recoveryCodes };
    },

    remove: (sub: string) => records.del(key(sub)),
  };
}
export type SecondFactors = ReturnType<typeof secondFactors>;
