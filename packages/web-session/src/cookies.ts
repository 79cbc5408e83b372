import type { CookieOptions, Request, Response } from 'express';
import { PENDING_TTL_MS } from './pending.ts';

/**
 * `__Host-` (RFC 6265bis §4.1.3.2): Secure, Path=/ and no Domain, so no other host of the domain can
 * set or shadow it. HttpOnly: no script reads it. SameSite=Lax rather than Strict: a bookmarked link
 * opened from a mail or a chat is a top-level navigation from another site, and with Strict it would
 * come without the session and send a signed-in person through the login again; Lax still keeps it off
 * other sites' POSTs, images and frames (logout checks the origin besides). No Max-Age: closing the
 * browser drops it; the server ends it after its idle and absolute lifetimes anyway.
 */
const SESSION_COOKIE: CookieOptions = { path: '/', secure: true, httpOnly: true, sameSite: 'lax' };

/**
 * The binding of a sign-in to the browser that started it (RFC 6749 §10.12, RFC 9700 §4.7.1): the
 * callback accepts a state only with the cookie it was opened with, so an attacker cannot make a
 * victim's browser complete the attacker's own sign-in (login CSRF). Lax: it must come along on PAS's
 * redirect back, a top-level navigation from another site.
 */
const BINDING_COOKIE: CookieOptions = { path: '/', secure: true, httpOnly: true, sameSite: 'lax', maxAge: PENDING_TTL_MS };

const cookieValue = (req: Request, name: string): string | undefined => {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
};

export function cookies(sessionName: string) {
  const bindingName = `${sessionName}-login`;
  return {
    session: (req: Request) => cookieValue(req, sessionName),
    setSession: (res: Response, id: string) => void res.cookie(sessionName, id, SESSION_COOKIE),
    clearSession: (res: Response) => void res.clearCookie(sessionName, SESSION_COOKIE),
    binding: (req: Request) => cookieValue(req, bindingName),
    setBinding: (res: Response, value: string) => void res.cookie(bindingName, value, BINDING_COOKIE),
  };
}
