import { randomUUID } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError, loadOrCreateDpopKey } from '@keyway/clients';
import { dpopKeyFromPem } from '@keyway/tokens';
import { AMQP_URL, REDIS_URL, startSuite, type Suite } from '@keyway/testkit';
import { PASSWORD } from '../helpers.ts';
import { operatorLogin, operatorOtp, provisionOperator } from '../operators/operator.ts';
import { type KeywayRunOptions, operatorFiles, startKeywayAt } from './keyway.ts';

/**
 * Issue 14, the CLI's session: `keyway login` binds its pair to a DPoP key (RFC 9449) kept beside the
 * session file, so the session file alone, copied elsewhere, is no longer 14 days of operator access.
 */
let suite: Suite;
let dir: string;
let files: { ca: string };
beforeAll(async () => {
  suite = await startSuite({ redisUrl: REDIS_URL, amqpUrl: AMQP_URL });
  dir = mkdtempSync(join(tmpdir(), 'keyway-cli-dpop-'));
  files = operatorFiles(suite, dir);
});
afterAll(async () => {
  await suite?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const keyway = (args: string[], options?: KeywayRunOptions) => startKeywayAt(suite, dir, files, args, options).done;
const cnf = (jwt: string) => (decodeJwt(jwt) as { cnf?: { jkt: string } }).cnf;

describe('keyway login: a session bound to the CLI’s DPoP key', () => {
  it('binds the pair to the key file’s key, keeps working across a refresh, and is useless copied without the key', async () => {
    const { email } = await provisionOperator(suite);
    const configHome = join(dir, `home-${randomUUID().slice(0, 8)}`);
    const login = await keyway(['login', email, '--otp', await operatorOtp(email)], { input: `${PASSWORD}\n`, configHome });
    expect(login.stderr).toBe('');
    expect(login.code).toBe(0);

    const folder = join(configHome, 'keyway');
    const sessionFile = join(folder, 'session.json');
    const keyFile = join(folder, 'dpop-key.pem');
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const { jkt } = await dpopKeyFromPem(readFileSync(keyFile, 'utf8'));
    const saved = JSON.parse(readFileSync(sessionFile, 'utf8'));
    expect(saved.dpop_jkt).toBe(jkt);
    expect(cnf(saved.refresh_token)).toEqual({ jkt });
    expect(cnf(saved.access_token)).toEqual({ jkt });

    const tenant = `dpop-${randomUUID().slice(0, 8)}`;
    expect((await keyway(['tenant', 'create', tenant], { configHome })).code).toBe(0);

    // The access token expired: the refresh carries a proof, the new pair is bound to the same key.
    writeFileSync(sessionFile, JSON.stringify({ ...saved, expires_at: 0 }), { mode: 0o600 });
    const afterRefresh = await keyway(['--json', 'tenant', 'show', tenant], { configHome });
    expect(afterRefresh.stderr).toBe('');
    expect(afterRefresh.code).toBe(0);
    const refreshed = JSON.parse(readFileSync(sessionFile, 'utf8'));
    expect(refreshed.refresh_token).not.toBe(saved.refresh_token);
    expect(refreshed.dpop_jkt).toBe(jkt);
    expect(cnf(refreshed.refresh_token)).toEqual({ jkt });

    // The session file copied to another HOME without its key: refused before anything is sent.
    const thief = join(dir, `thief-${randomUUID().slice(0, 8)}`);
    mkdirSync(join(thief, 'keyway'), { recursive: true, mode: 0o700 });
    copyFileSync(sessionFile, join(thief, 'keyway', 'session.json'));
    const stolen = await keyway(['tenant', 'show', tenant], { configHome: thief });
    expect(stolen.code).toBe(5);
    expect(stolen.stderr).toContain('bound to a DPoP key');
    expect(stolen.stderr).toContain('keyway login');

    // ... and beside a key of the thief's own: refused as well (PAS would refuse its proofs).
    await loadOrCreateDpopKey(join(thief, 'keyway', 'dpop-key.pem'));
    const otherKey = await keyway(['tenant', 'show', tenant], { configHome: thief });
    expect(otherKey.code).toBe(5);
    expect(otherKey.stderr).toContain('holds another key');

    // The stolen refresh token used directly at PAS, without a proof: 400 invalid_dpop_proof (RFC 9449 §5).
    const direct = await suite.pas.refresh(refreshed.refresh_token).catch((err: unknown) => err);
    expect(direct).toBeInstanceOf(ApiError);
    expect(direct).toMatchObject({ status: 400, code: 'invalid_dpop_proof' });

    // The owner's session is not hurt by the refused attempt: it refreshes again with its key.
    writeFileSync(sessionFile, JSON.stringify({ ...refreshed, expires_at: 0 }), { mode: 0o600 });
    expect((await keyway(['tenant', 'show', tenant], { configHome })).code).toBe(0);
    expect(JSON.parse(readFileSync(sessionFile, 'utf8')).refresh_token).not.toBe(refreshed.refresh_token);

    // A key file others may read is refused, saying how to fix it.
    chmodSync(keyFile, 0o644);
    const exposed = await keyway(['tenant', 'show', tenant], { configHome });
    expect(exposed.code).toBe(5);
    expect(exposed.stderr).toContain('mode 0644');
    expect(exposed.stderr).toContain(`chmod 600 ${keyFile}`);
  }, 120_000);

  it('a bearer session saved before the CLI had a key is bound at its next refresh', async () => {
    const { email } = await provisionOperator(suite);
    const tokens = await operatorLogin(suite, email);
    expect(cnf(tokens.refresh_token)).toBeUndefined();
    const folder = join(dir, `old-${randomUUID().slice(0, 8)}`, 'keyway');
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const sessionFile = join(folder, 'session.json');
    const old = {
      pas_url: suite.urls.pas,
      email,
      scope: tokens.scope,
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      expires_at: 0,
      refresh_expires_at: Date.now() + 3_600_000,
    };
    writeFileSync(sessionFile, JSON.stringify(old), { mode: 0o600 });

    const run = await keyway(['tenant', 'list'], { configHome: join(folder, '..') });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const { jkt } = await dpopKeyFromPem(readFileSync(join(folder, 'dpop-key.pem'), 'utf8'));
    const bound = JSON.parse(readFileSync(sessionFile, 'utf8'));
    expect(bound.dpop_jkt).toBe(jkt);
    expect(cnf(bound.refresh_token)).toEqual({ jkt });
  }, 60_000);
});
