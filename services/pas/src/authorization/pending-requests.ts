import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { tooManyRequests, windowLimiter } from '@keyway/kit';
import type { Store } from '@keyway/store';

/** How long a login page may be filled in before its form is refused (the user starts again from the application). */
const LOGIN_PAGE_TTL_MS = 10 * 60 * 1000;
/**
 * Login pages one source address may open per minute. Each keeps a pending request in the store for
 * LOGIN_PAGE_TTL_MS, so this bounds what one address can make PAS hold (600 requests) by asking for pages.
 */
const PAGES_PER_SOURCE_PER_MINUTE = 60;

const PendingAuthorization = z.object({
  client_id: z.string(),
  redirect_uri: z.string(),
  scope: z.string(),
  state: z.string().optional(),
  code_challenge: z.string(),
  /** SHA-256 of the browser's binding cookie: the form is taken only from the browser that was served the page */
  browser: z.string(),
});
export type PendingAuthorization = z.infer<typeof PendingAuthorization>;

export const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url');

/** 256 random bits, base64url (43 characters): request ids, browser bindings and codes. */
export const unguessable = (): string => randomBytes(32).toString('base64url');

/**
 * Authorization requests waiting for their login form (CSRF defence): kept server-side under an
 * unguessable id that the page's form carries, bound to the browser that got the page, single use.
 * Stored under the id's hash, so the store holds nothing a form could be posted with.
 */
export function pendingAuthorizations(store: Store) {
  const key = (id: string) => `authz-request:${sha256(id)}`;
  const pages = windowLimiter(store, { name: 'login-pages', points: PAGES_PER_SOURCE_PER_MINUTE, windowMs: 60_000 });
  return {
    /** a new pending request of a page served to `source`; 429 past its pages per minute */
    async open(request: PendingAuthorization, source: string): Promise<string> {
      const limit = await pages.hit(source);
      if (!limit.allowed) throw tooManyRequests(limit, `${limit.count} login pages for ${source} in a minute`, 'too many sign-ins started from this address; retry later');
      const id = unguessable();
      await store.set(key(id), JSON.stringify(request), { ttlMs: LOGIN_PAGE_TTL_MS });
      return id;
    },
    async find(id: string): Promise<PendingAuthorization | undefined> {
      const raw = await store.get(key(id));
      return raw === null ? undefined : PendingAuthorization.parse(JSON.parse(raw));
    },
    /** true for the one caller that ends it: a form posted twice at once leads to one code */
    close: async (id: string): Promise<boolean> => (await store.take(key(id))) !== null,
  };
}
export type PendingAuthorizations = ReturnType<typeof pendingAuthorizations>;
