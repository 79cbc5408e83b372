import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '@keyway/kit';
import type { Store } from '@keyway/store';

/** how long an instance stays listed without refreshing: a dead instance's locks are lost after at most this */
const ENTRY_TTL_MS = 30_000;
const REFRESH_MS = ENTRY_TTL_MS / 3;

const InstanceUrl = z.string().url();

/**
 * The topic-service instances that hold lock tokens: each instance lists `its id -> its own directly
 * reachable base URL` (INSTANCE_URL) in the shared store with a short TTL it keeps refreshing, and
 * unlists itself when it closes. A settle whose token names another instance is sent to the URL
 * listed here, never to one a request names (the token carries only the id), so a client cannot
 * point the service at an address of its choosing.
 *
 * The id is 48 random bits, chosen per process start, so a restarted instance never answers for the
 * locks of its previous life (those went back to their queues when it stopped or died).
 */
export function instanceRegistry(store: Store, options: { url: string; logger: Logger; refreshMs?: number }) {
  const id = randomBytes(6).toString('hex');
  const key = (instance: string) => `instances:${instance}`;
  const { url, logger } = options;
  let closed = false;

  const register = async (): Promise<void> => {
    try {
      await store.set(key(id), url, { ttlMs: ENTRY_TTL_MS });
    } catch (err) {
      // other instances cannot reach our locks meanwhile (their settles answer 410); ours still settle here
      logger.warn('instance.register_failed', { instance: id, err });
    }
  };
  /** the registration in flight: close waits for it, so a late refresh cannot list a closed instance again */
  let pending = register();
  const timer = setInterval(() => {
    pending = register();
  }, options.refreshMs ?? REFRESH_MS);
  timer.unref();

  return {
    /** this instance's id: the first 48 bits of every lock token it hands out */
    id,
    /** the listed URL of an instance; undefined when it is not listed (gone, or never existed); rejects when the store cannot answer */
    async urlOf(instance: string): Promise<string | undefined> {
      const listed = await store.get(key(instance));
      if (listed === null) return undefined;
      const parsed = InstanceUrl.safeParse(listed);
      if (!parsed.success) {
        logger.error('instance.bad_entry', { instance });
        return undefined;
      }
      return parsed.data;
    },
    /** unlists this instance (only its own entry), so its tokens answer 410 at once rather than after the TTL */
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      await pending;
      await store.commitIf({ key: key(id), expected: url }, [{ op: 'del', key: key(id) }]).catch((err: unknown) => logger.warn('instance.unregister_failed', { instance: id, err }));
    },
  };
}
export type InstanceRegistry = ReturnType<typeof instanceRegistry>;
