import { z } from 'zod';
import { noBody } from './openapi.ts';
import { route } from './route.ts';

const value = (max: number) => z.string().max(max).optional();

/**
 * RFC 6749 §4.1.2 and §4.1.2.1 with RFC 9207: what PAS's redirect brings back to a browser client,
 * a code or an error, always with `state` (the client always sends one) and `iss`.
 */
const CallbackQuery = z.object({
  code: value(256),
  state: value(1024),
  iss: value(2000),
  error: value(100),
  error_description: value(300),
  error_uri: value(2000),
});

/** A browser session's own routes (@keyway/web-session), served by the site that uses it. */
export const webSessionRoutes = {
  callback: route({
    method: 'get',
    path: '/oauth2/callback',
    summary: 'redirection endpoint (RFC 6749 §3.1.2) of the browser login: checks state and iss (RFC 9207), redeems the code with its PKCE verifier, starts the session',
    description:
      'Success sets the session cookie (`__Host-`, HttpOnly, Secure, SameSite=Lax) and redirects (303) to the link that started the sign-in. A missing, unknown, used or foreign state, a wrong iss or a code PAS refuses is a 400 page; error=access_denied from PAS is a 403 page.',
    query: CallbackQuery,
    responses: { 303: noBody('Location: the same-site path that started the sign-in; Set-Cookie: the session') },
    errors: [400, 403, 503],
  }),
  logout: route({
    method: 'post',
    path: '/logout',
    summary: 'ends the browser session: revokes its refresh token at PAS (RFC 7009), deletes it, clears the cookie',
    description: 'Same-origin only (Sec-Fetch-Site: same-origin, or Origin equal to the site’s from a browser without Fetch Metadata): another origin’s POST is refused with 403 and changes nothing.',
    responses: { 303: noBody('Location: /; Set-Cookie: the session cookie, expired') },
    errors: [403, 503],
  }),
};
