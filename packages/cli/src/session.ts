import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ApiError, type ClientOptions, DpopKeyFileError, dpopSigner, type DpopSigner, loadOrCreateDpopKey, pasClient, readDpopKeyFile } from '@keyway/clients';
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
  /** RFC 9449: the thumbprint of the key in dpop-key.pem that PAS bound the pair to (cnf.jkt); absent for a bearer pair */
  dpop_jkt: z.string().min(1).optional(),
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

/**
 * The CLI's DPoP key (RFC 9449) beside the session files, in the same 0700 folder: one key for the
 * operator and the releases session, made at the first login. PAS binds both tokens of a login to it.
 */
const dpopKeyPath = (sessionFile: string): string => join(dirname(sessionFile), 'dpop-key.pem');

/** A key file others may read, or that is not a key, is the person's to fix: said plainly, no token sent. */
const keyFileRefused = (err: unknown): never => {
  if (err instanceof DpopKeyFileError) throw new CliError(err.message, EXIT.auth);
  throw err;
};

/** At a login: the key the new pair is bound to, made (0600, in a 0700 folder) when there is none yet. */
export async function loginDpopSigner(sessionFile: string): Promise<DpopSigner> {
  mkdirSync(dirname(sessionFile), { recursive: true, mode: 0o700 });
  return dpopSigner(await loadOrCreateDpopKey(dpopKeyPath(sessionFile)).catch(keyFileRefused));
}

/**
 * The key a bound session needs for every use, never made here: a session file copied without its key
 * (to another HOME, another host) is refused before anything is sent, since PAS would refuse its
 * refresh token anyway (RFC 9449 §5).
 */
async function sessionDpopSigner(session: Session, path: string, login: string): Promise<DpopSigner | undefined> {
  if (session.dpop_jkt === undefined) return undefined;
  const keyPath = dpopKeyPath(path);
  const key = await readDpopKeyFile(keyPath).catch(keyFileRefused);
  if (key?.jkt !== session.dpop_jkt) {
    const where = key === undefined ? `there is no ${keyPath}` : `${keyPath} holds another key`;
    throw notLoggedIn(`the session in ${path} is bound to a DPoP key (RFC 9449) and ${where}: a session file copied without its key cannot be used`, login);
  }
  return dpopSigner(key);
}

/** `dpopJkt`: the key the login's proof was signed with, recorded when PAS bound the pair to it (token_type DPoP). */
export function sessionFrom(pasUrl: string, email: string, tokens: TokenResponse, now = Date.now(), dpopJkt?: string): Session {
  return {
    pas_url: pasUrl,
    email,
    scope: tokens.scope,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    expires_at: now + tokens.expires_in * 1000,
    refresh_expires_at: now + tokens.refresh_expires_in * 1000,
    ...(tokens.token_type === 'DPoP' && dpopJkt !== undefined && { dpop_jkt: dpopJkt }),
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
 * rotates, so the new pair is saved at once). Sessions are bound to the PAS that issued them, and a
 * DPoP-bound one to the key beside it: the refresh carries a proof signed with it. `pasOptions`: how
 * to reach PAS (no credentials).
 */
export async function freshAccessToken(pasOptions: ClientOptions, pasUrl: string, path = sessionPath(), now = Date.now, login = 'keyway login'): Promise<string> {
  return (await freshSessionToken(pasOptions, pasUrl, path, now, login)).accessToken;
}

/** freshAccessToken, with the DPoP key the token is bound to (undefined for a bearer session): what a call that must prove it needs. */
export async function freshSessionToken(
  pasOptions: ClientOptions,
  pasUrl: string,
  path = sessionPath(),
  now = Date.now,
  login = 'keyway login',
): Promise<{ accessToken: string; dpop: DpopSigner | undefined }> {
  const session = readSession(path);
  if (!session) throw notLoggedIn('no credentials: give --cert and --key, set KEYWAY_TOKEN, or log in', login);
  if (session.pas_url !== pasUrl) throw notLoggedIn(`the saved session is for ${session.pas_url}, not ${pasUrl}`, login);
  const bound = await sessionDpopSigner(session, path, login);
  if (session.expires_at - now() > REFRESH_MARGIN_MS) return { accessToken: session.access_token, dpop: bound };
  if (session.refresh_expires_at <= now()) throw notLoggedIn('the session has expired', login);
  // A bearer session (saved before the CLI had a key) refreshed with a proof is bound from then on.
  const dpop = bound ?? (await loginDpopSigner(path));
  try {
    const pas = pasClient({ ...pasOptions, dpop });
    const refreshed = sessionFrom(pasUrl, session.email, await pas.refresh(session.refresh_token), now(), dpop.key.jkt);
    writeSession(refreshed, path);
    return { accessToken: refreshed.access_token, dpop: refreshed.dpop_jkt === undefined ? undefined : dpop };
  } catch (err) {
    if (!(err instanceof ApiError && (err.code === 'invalid_grant' || err.code === 'invalid_dpop_proof'))) throw err;
    // Another keyway process may have refreshed the same pair a moment ago (PAS refuses the spent
    // token without revoking the family within its reuse leeway): its new pair is in the file.
    const current = readSession(path);
    if (current && current.refresh_token !== session.refresh_token && current.expires_at - now() > REFRESH_MARGIN_MS)
      return { accessToken: current.access_token, dpop: await sessionDpopSigner(current, path, login) };
    throw notLoggedIn(`the session can no longer be refreshed (${err.description || err.code})`, login);
  }
}
