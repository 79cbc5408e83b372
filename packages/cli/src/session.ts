import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ApiError, type PasClient } from '@keyway/clients';
import type { TokenResponse } from '@keyway/contracts';
import { CliError, EXIT } from './exit-codes.ts';

/** An operator login (`keyway login`): the token pair and when each half expires. */
export const Session = z.object({
  pas_url: z.string(),
  email: z.string(),
  scope: z.string(),
  access_token: z.string().min(1),
  refresh_token: z.string().min(1),
  /** epoch milliseconds */
  expires_at: z.number(),
  refresh_expires_at: z.number(),
});
export type Session = z.infer<typeof Session>;

/** A token this close to expiry is refreshed first, so it does not expire on the way. */
const REFRESH_MARGIN_MS = 60_000;

/** `$XDG_CONFIG_HOME/keyway/session.json`, by default `~/.config/keyway/session.json`. */
export function sessionPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'keyway', 'session.json');
}

/** `keyway release login`'s own file beside it, so a person's releases login never replaces an operator session. */
export function releaseSessionPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(dirname(sessionPath(env)), 'release-session.json');
}

export function sessionFrom(pasUrl: string, email: string, tokens: TokenResponse, now = Date.now()): Session {
  return {
    pas_url: pasUrl,
    email,
    scope: tokens.scope,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: now + tokens.expires_in * 1000,
    refresh_expires_at: now + tokens.refresh_expires_in * 1000,
  };
}

export function readSession(path = sessionPath()): Session | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = Session.safeParse(json);
  if (!parsed.success) throw new CliError(`${path} is not a keyway session; run \`keyway login\` again`, EXIT.auth);
  return parsed.data;
}

/** Written to a new file (mode 0600, in a 0700 folder) and renamed over the old one, so no reader sees half a session. */
export function writeSession(session: Session, path = sessionPath()): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(session, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, path);
}

export function deleteSession(path = sessionPath()): void {
  rmSync(path, { force: true });
}

const notLoggedIn = (why: string, login: string) => new CliError(`${why}: run \`${login}\``, EXIT.auth);

/**
 * The cached session's access token, refreshed at PAS when it is about to expire (the refresh token
 * rotates, so the new pair is saved at once). Sessions are bound to the PAS that issued them.
 */
export async function freshAccessToken(pas: PasClient, pasUrl: string, path = sessionPath(), now = Date.now, login = 'keyway login'): Promise<string> {
  const session = readSession(path);
  if (!session) throw notLoggedIn('no credentials: give --cert and --key, set KEYWAY_TOKEN, or log in', login);
  if (session.pas_url !== pasUrl) throw notLoggedIn(`the saved session is for ${session.pas_url}, not ${pasUrl}`, login);
  if (session.expires_at - now() > REFRESH_MARGIN_MS) return session.access_token;
  if (session.refresh_expires_at <= now()) throw notLoggedIn('the session has expired', login);
  try {
    const refreshed = sessionFrom(pasUrl, session.email, await pas.refresh(session.refresh_token), now());
    writeSession(refreshed, path);
    return refreshed.access_token;
  } catch (err) {
    if (!(err instanceof ApiError && err.code === 'invalid_grant')) throw err;
    // Another keyway process may have refreshed the same pair a moment ago (PAS refuses the spent
    // token without revoking the family within its reuse leeway): its new pair is in the file.
    const current = readSession(path);
    if (current && current.refresh_token !== session.refresh_token && current.expires_at - now() > REFRESH_MARGIN_MS) return current.access_token;
    throw notLoggedIn(`the session can no longer be refreshed (${err.description || err.code})`, login);
  }
}
