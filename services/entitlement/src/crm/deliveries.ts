import { createHash } from 'node:crypto';
import type { Store } from '@keyway/store';

/** How long a processed delivery id is remembered: longer than a CRM goes on retrying one. */
export const DELIVERY_MEMORY_MS = 7 * 24 * 3600 * 1000;
/** A claim not completed within this (the process died mid-way) lapses, so the sender's retry applies it. */
const CLAIM_MS = 60_000;

export type Claim = 'new' | 'duplicate' | 'in_progress' | 'conflict';

export const bodyDigest = (rawBody: Buffer) => createHash('sha256').update(rawBody).digest('hex');

/**
 * Replay protection by delivery id: the first delivery of an id claims it with its body's digest;
 * the same body again is a duplicate (answered, never applied twice), another body under the same id
 * is a conflict. A failed delivery releases its claim so the sender's retry is applied.
 */
export function crmDeliveries(store: Store) {
  const key = (id: string) => `crm-delivery:${id}`;
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
  };
}
export type CrmDeliveries = ReturnType<typeof crmDeliveries>;
