import { z } from 'zod';

/** A redirect URI as RFC 6749 §3.1.2 and RFC 9700 §2.1 allow it: absolute, https, no fragment; matched exactly. */
const RedirectUri = z
  .string()
  .max(2000)
  .url()
  .refine((uri) => new URL(uri).protocol === 'https:', 'a redirect URI must be https')
  .refine((uri) => !uri.includes('#'), 'a redirect URI must not include a fragment (RFC 6749 §3.1.2)');

/**
 * A registered browser client (RFC 7591 §2 metadata names): a public client, so it has no secret and
 * PKCE stands in for its authentication at the token endpoint.
 */
const BrowserClient = z.object({
  client_id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'client_id: 1 to 128 of A-Z a-z 0-9 . _ : -'),
  /** shown on the login page; default: the client_id */
  client_name: z.string().min(1).max(100).optional(),
  redirect_uris: z.array(RedirectUri).min(1).max(20),
  /** the scope values it may ask for, space-separated; also the scope of a request that names none (RFC 6749 §3.3) */
  scope: z.string().min(1).max(1000),
});
export type BrowserClient = z.infer<typeof BrowserClient>;

/** The BROWSER_CLIENTS value: a JSON array of registrations, each client_id once. */
export const BrowserClients = z.array(BrowserClient).superRefine((clients, ctx) => {
  const seen = new Set<string>();
  for (const [i, { client_id }] of clients.entries()) {
    if (seen.has(client_id)) ctx.addIssue({ code: 'custom', path: [i, 'client_id'], message: `client_id ${client_id} is registered twice` });
    seen.add(client_id);
  }
});

export type BrowserClientRegistry = ReadonlyMap<string, BrowserClient>;

export const browserClientRegistry = (clients: BrowserClient[]): BrowserClientRegistry => new Map(clients.map((client) => [client.client_id, client]));

/** RFC 6749 §3.3: a scope within the registration's; none asked for is the registration's own. */
export function scopeFor(client: BrowserClient, asked: string | undefined): string | undefined {
  if (asked === undefined) return client.scope;
  const allowed = new Set(client.scope.split(' ').filter(Boolean));
  const values = asked.split(' ').filter(Boolean);
  return values.length > 0 && values.every((value) => allowed.has(value)) ? values.join(' ') : undefined;
}
