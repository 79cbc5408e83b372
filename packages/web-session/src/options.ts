import { z } from 'zod';
import { webSessionRoutes } from '@keyway/contracts';

const https = (url: string) => new URL(url).protocol === 'https:';

/** A browser session's configuration; each site that uses it parses its own environment into these. */
export const BrowserSessionOptions = z.object({
  issuer: z.string().url().refine(https, 'the issuer must be https').describe('PAS, exactly as its discovery document and RFC 9207 `iss` name it'),
  clientId: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'clientId: 1 to 128 of A-Z a-z 0-9 . _ : -')
    .describe('this site, as PAS registers it (BROWSER_CLIENTS): a public client, no secret'),
  redirectUri: z
    .string()
    .url()
    .refine(https, 'the redirectUri must be https')
    .refine((uri) => {
      const url = new URL(uri);
      return url.pathname === webSessionRoutes.callback.path && url.search === '' && url.hash === '';
    }, `the redirectUri must be this site's ${webSessionRoutes.callback.path}, without query or fragment`)
    .describe("this site's callback, registered exactly at PAS; its origin is the site's origin (logout's same-origin check)"),
  scope: z.string().min(1).max(1000).describe('what the site asks PAS for'),
  audience: z.string().min(1).describe('the "aud" PAS gives access tokens (its ACCESS_AUDIENCE): the access token is verified with it'),
  cookieName: z
    .string()
    .regex(/^__Host-[A-Za-z0-9_-]{1,64}$/, 'the cookie name must start with __Host- (RFC 6265bis §4.1.3.2: Secure, Path=/, no Domain)')
    .default('__Host-keyway-releases'),
  idleTtlSec: z
    .number()
    .int()
    .min(1)
    .default(8 * 3600)
    .describe('a session unused this long ends (sliding)'),
  absoluteTtlSec: z.number().int().min(1).optional().describe("a session ends this long after its login whatever its use; default: the refresh token's lifetime"),
  caPem: z.string().min(1).describe("the CA that signs PAS's certificate"),
  clockToleranceSec: z.number().int().min(0).max(300).default(30),
  signInsPerMinute: z.number().int().min(1).default(60).describe('sign-ins one address may start per minute (429 beyond): each is held 10 minutes in the store'),
});
export type BrowserSessionOptions = z.input<typeof BrowserSessionOptions>;
export type SessionSettings = z.output<typeof BrowserSessionOptions> & { origin: string };

export function sessionSettings(options: BrowserSessionOptions): SessionSettings {
  const parsed = BrowserSessionOptions.parse(options);
  return { ...parsed, origin: new URL(parsed.redirectUri).origin };
}
