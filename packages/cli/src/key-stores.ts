import { z } from 'zod';
import { createStore, type Store } from '@keyway/store';

/**
 * The stores PAS and PAC keep their sealed keys in, opened as the services open them (REDIS_URL,
 * STORE_PREFIX, `${STORE_PREFIX}:<service>:`). The one place that knows where the records live:
 * when they move to PostgreSQL, only this function changes.
 */
const KeyStoreEnv = z.object({
  REDIS_URL: z.url({ error: 'required: the Redis PAS and PAC keep their keys in' }),
  STORE_PREFIX: z
    .string()
    .regex(/^[a-z0-9:_-]{1,64}$/)
    .default('keyway'),
});

export async function openKeyStores(env: Record<string, string | undefined>): Promise<{ service: 'pas' | 'pac'; store: Store }[]> {
  const { REDIS_URL, STORE_PREFIX } = KeyStoreEnv.parse(env);
  const open = (service: 'pas' | 'pac') => createStore({ redisUrl: REDIS_URL, prefix: `${STORE_PREFIX}:${service}:` });
  return [
    { service: 'pas', store: await open('pas') },
    { service: 'pac', store: await open('pac') },
  ];
}
