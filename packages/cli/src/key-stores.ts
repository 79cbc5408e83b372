import { z } from 'zod';
import { DbUnavailableError, openPostgres, serviceRole } from '@keyway/db';
import { keyspacePrefix, parseConfig } from '@keyway/kit';
import { createPgStore, StoreUnavailableError, type Store } from '@keyway/store';

/**
 * The records PAS and PAC keep their sealed keys in, and the IdP its sealed TOTP secrets (their schemas of the system of record), opened
 * as the services open them (`${STORE_PREFIX}:<service>:`), through one connection of a role that
 * may write both schemas (the migrator's): the one place that knows where the keys live.
 */
const KeyStoreEnv = z.object({
  DATABASE_URL: z.url({
    error: 'required: the PostgreSQL PAS, PAC and the IdP keep their sealed keys in, as a role that may write keyway_pas, keyway_pac and keyway_idp (e.g. the one `keyway db migrate` uses)',
  }),
  STORE_PREFIX: z
    .string()
    .regex(/^[a-z0-9:_-]{1,64}$/)
    .default('keyway'),
});

type KeyService = 'pas' | 'pac' | 'idp';

export async function openKeyStores(env: Record<string, string | undefined>): Promise<{ stores: { service: KeyService; store: Store; keyPrefixes?: string[] }[]; close(): Promise<void> }> {
  const { DATABASE_URL, STORE_PREFIX } = parseConfig(KeyStoreEnv, env);
  const db = openPostgres({ url: DATABASE_URL, max: 2 });
  try {
    await db.ping();
  } catch (err) {
    await db.close();
    throw err instanceof DbUnavailableError ? new StoreUnavailableError(err.message, { cause: err }) : err;
  }
  const open = (service: KeyService) => createPgStore({ db, schema: serviceRole(service), prefix: keyspacePrefix(STORE_PREFIX, service) });
  const stores = [
    { service: 'pas' as const, store: open('pas') },
    { service: 'pac' as const, store: open('pac') },
    // only the second factors: the IdP's other records hold nothing sealed
    { service: 'idp' as const, store: open('idp'), keyPrefixes: ['mfa:'] },
  ];
  return {
    stores,
    async close() {
      await Promise.all(stores.map(({ store }) => store.close()));
      await db.close();
    },
  };
}
