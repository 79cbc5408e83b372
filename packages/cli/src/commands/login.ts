import type { Command } from 'commander';
import { pasClient } from '@keyway/clients';
import { Email, OPERATOR_SCOPE } from '@keyway/contracts';
import type { CliContext } from '../context.ts';
import { fields } from '../output.ts';
import { ask, readSecret } from '../prompt.ts';
import { deleteSession, loginDpopSigner, readSession, type Session, sessionFrom, sessionPath, writeSession } from '../session.ts';

/** What login and logout print: never a token. */
const summary = (session: { email: string; pas_url: string; scope: string; expires_at: number; refresh_expires_at: number }) => ({
  email: session.email,
  pas_url: session.pas_url,
  scope: session.scope,
  expires_at: new Date(session.expires_at).toISOString(),
  refresh_expires_at: new Date(session.refresh_expires_at).toISOString(),
});

/**
 * A person's password login at PAS for `scope` (the email asked for when not given, the password read
 * without echo, and `otp`: a second factor's code), saved to `path`. The request carries a DPoP proof
 * (RFC 9449) of the key beside the session, so PAS binds the pair to that key.
 */
export async function passwordLogin(context: CliContext, emailArgument: string | undefined, scope: string, path: string, otp?: string): Promise<Session> {
  const email = Email.parse(emailArgument ?? (await ask('Email: ')));
  const password = await readSecret('Password: ');
  const dpop = await loginDpopSigner(path);
  const pas = pasClient({ ...(await context.clientOptions('pas', false)), dpop });
  const session = sessionFrom(context.globals().pasUrl, email, await pas.password(email, password, scope, undefined, otp), Date.now(), dpop.key.jkt);
  writeSession(session, path);
  return session;
}

export function register(program: Command, context: CliContext): void {
  program
    .command('login')
    .description('log in as an operator (PAS password grant, scope=operator); the token pair is saved for the next commands')
    .argument('[email]', 'the operator’s email (asked for when omitted)')
    .option('--otp <code>', 'a code from your authenticator app, or a recovery code (the operator scope needs a second factor: `keyway mfa enroll`); asked for at a terminal when omitted')
    .addHelpText(
      'after',
      '\nThe password is typed without echo, or read from the first line of standard input when it is piped.\nThe session is saved to $XDG_CONFIG_HOME/keyway/session.json (default ~/.config/keyway/session.json), mode 0600, bound (DPoP, RFC 9449) to the key dpop-key.pem beside it: copied without that key it is useless.\nKey rotations and tenant deletion need a login with a code within the last few minutes (STEP_UP_MAX_AGE_SEC): log in again with --otp.',
    )
    .action(async (emailArgument: string | undefined, options: { otp?: string }) => {
      // a one-time code is spent by this login, so the command line may carry it (unlike the password)
      const otp = options.otp ?? (process.stdin.isTTY ? (await ask('One-time code (authenticator app or recovery code): ')) || undefined : undefined);
      const session = await passwordLogin(context, emailArgument, OPERATOR_SCOPE, sessionPath(), otp);
      const shown = summary(session);
      context.print(shown, () => `Logged in as ${session.email} at ${session.pas_url}; session until ${shown.refresh_expires_at} (${sessionPath()}).`);
    });

  program
    .command('logout')
    .description('revoke the saved session at PAS (RFC 7009) and delete it')
    .action(async () => {
      const session = readSession();
      if (!session) {
        context.print({ logged_out: false }, () => 'Not logged in.');
        return;
      }
      const pas = pasClient({ ...(await context.clientOptions('pas', false)), baseUrl: session.pas_url });
      // Revoking the refresh token revokes its whole family, the access token included.
      await pas.revoke(session.refresh_token, 'refresh_token');
      deleteSession();
      context.print({ logged_out: true, ...summary(session) }, () =>
        fields([
          ['Logged out', session.email],
          ['PAS', session.pas_url],
        ]),
      );
    });
}
