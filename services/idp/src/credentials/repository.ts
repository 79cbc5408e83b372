import { z } from 'zod';
import type { Store } from '@keyway/store';

const Credential = z.object({ sub: z.string(), tenant: z.string(), email: z.string(), passwordHash: z.string().optional() });
export type Credential = z.infer<typeof Credential>;

/** Credentials by email, with an index by subject so an email change drops the old entry. */
export function credentialRepository(store: Store) {
  const byEmail = (email: string) => `cred:email:${email}`;
  const bySub = (sub: string) => `cred:sub:${sub}`;
  return {
    async findByEmail(email: string): Promise<Credential | undefined> {
      const raw = await store.get(byEmail(email));
      return raw ? Credential.parse(JSON.parse(raw)) : undefined;
    },
    async findBySub(sub: string): Promise<Credential | undefined> {
      const email = await store.get(bySub(sub));
      return email ? this.findByEmail(email) : undefined;
    },
    /** true when there was something to remove */
    async remove(sub: string): Promise<boolean> {
      const email = await store.get(bySub(sub));
      if (!email) return false;
      await store.del(byEmail(email), bySub(sub));
      return true;
    },
    async save(credential: Credential): Promise<void> {
      const previousEmail = await store.get(bySub(credential.sub));
      if (previousEmail && previousEmail !== credential.email) await store.del(byEmail(previousEmail));
      await store.set(byEmail(credential.email), JSON.stringify(credential));
      await store.set(bySub(credential.sub), credential.email);
    },
  };
}
export type CredentialRepository = ReturnType<typeof credentialRepository>;
