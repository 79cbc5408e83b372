import { createHash } from 'node:crypto';
import type { Store } from '@keyway/store';

/** How long a processed delivery id is remembered: longer than a CRM goes on retrying one. */
const DELIVERY_MEMORY_MS = 7 * 24 * 3600 * 1000;
/** A claim not completed within this (the process died mid-way) lapses, so the sender's retry applies it. */
const CLAIM_MS = 60_000;

export type Claim = 'new' | 'duplicate' | 'in_progress' | 'conflict';

export const bodyDigest = (rawBody: Buffer) => createHash('sha256').update(rawBody).digest('hex');

/**
 * Replay protection by delivery id, which the signature covers (crm/signature.ts), so a captured
 * delivery cannot be relabelled: the first delivery of an id claims it with its body's digest;
 * the same body again is a duplicate (answered, never applied twice), another body under the same id
 * is a conflict. A failed delivery releases its claim so the sender's retry is applied.
 */
export function crmDeliveries(store: Store) {
  const key = (id: string) => `crm-delivery:${id}`;
  const customerTag = (customerId: string) => createHash('sha256').update(customerId).digest('hex');
  const customerKey = (customerId: string) => `crm-customer-newest:${customerTag(customerId)}`;
  const lockKey = (customerId: string) => `crm-customer-lock:${customerTag(customerId)}`;
  return {
    async claim(id: string, digest: string): Promise<Claim> {
      if (await store.set(key(id), `pending:${digest}`, { ifAbsent: true, ttlMs: CLAIM_MS })) return 'new';
      const current = await store.get(key(id));
      // The claim lapsed between the two reads: claim again.
      if (current === null) return (await store.set(key(id), `pending:${digest}`, { ifAbsent: true, ttlMs: CLAIM_MS })) ? 'new' : 'in_progress';
      const [state, claimed] = current.split(':');
      if (claimed !== digest) return 'conflict';
      return state === 'done' ? 'duplicate' : 'in_progress';
    },
    complete: (id: string, digest: string) => store.set(key(id), `done:${digest}`, { ttlMs: DELIVERY_MEMORY_MS }),
    release: (id: string) => store.del(key(id)),
    /**
     * Order per customer: the signed timestamp of the newest delivery applied. A delivery signed
     * before it is superseded (an older state must not undo a newer one, whatever order they arrive in).
     */
    async supersededFor(customerId: string, signedAtSec: number): Promise<boolean> {
      const newest = await store.get(customerKey(customerId));
      return newest !== null && signedAtSec < Number(newest);
    },
    /** One delivery per customer at a time, so the order check and the change it guards cannot interleave. */
    lockCustomer: async (customerId: string) => store.set(lockKey(customerId), '1', { ifAbsent: true, ttlMs: CLAIM_MS }),
    unlockCustomer: async (customerId: string) => void (await store.del(lockKey(customerId))),
    /** Records `signedAtSec` as the customer's newest applied delivery unless a newer one got there first. */
    async applied(customerId: string, signedAtSec: number): Promise<void> {
      for (;;) {
        const newest = await store.get(customerKey(customerId));
        if (newest !== null && Number(newest) >= signedAtSec) return;
        if (await store.compareAndSet(customerKey(customerId), newest, String(signedAtSec))) return;
      }
    },
  };
}
export type CrmDeliveries = ReturnType<typeof crmDeliveries>;
