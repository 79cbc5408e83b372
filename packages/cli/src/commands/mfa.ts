import type { Command } from 'commander';
import { pasClient } from '@keyway/clients';
import { Email } from '@keyway/contracts';
import type { CliContext } from '../context.ts';
import { ask, readSecret } from '../prompt.ts';

export function register(program: Command, context: CliContext): void {
  const mfa = program.command('mfa').description('your second factor (TOTP, RFC 6238): the operator scope needs one');
  mfa
    .command('enroll')
    .description('enrol a TOTP factor at PAS with your password: prints the otpauth:// URI for your authenticator app and ten recovery codes, once')
    .argument('[email]', 'your email (asked for when omitted)')
    .option('--otp <code>', 'replacing an enrolled factor: a current code or a recovery code')
    .addHelpText(
      'after',
      '\nThe password is typed without echo, or read from the first line of standard input when it is piped.\nThe first factor of an account is enrolled on trust (whoever knows the password first); replacing it needs the current one.\nKeep the recovery codes offline: each works once, in place of a code.',
    )
    .action(async (emailArgument: string | undefined, options: { otp?: string }) => {
      const email = Email.parse(emailArgument ?? (await ask('Email: ')));
      const password = await readSecret('Password: ');
      const pas = pasClient(await context.clientOptions('pas', false));
      const enrolment = await pas.enrolTotp(email, password, options.otp);
      context.print(enrolment, () =>
        [
          `${enrolment.replaced ? 'Replaced the' : 'Enrolled a'} TOTP factor for ${email}. Shown once:`,
          '',
          'Add this to your authenticator app (or turn it into a QR code):',
          `  ${enrolment.otpauth_uri}`,
          `  secret: ${enrolment.secret} (SHA-1, 6 digits, 30 s)`,
          '',
          'Recovery codes (each works once in place of a code; keep them offline):',
          ...enrolment.recovery_codes.map((code) => `  ${code}`),
          '',
          `Log in with: keyway login ${email} --otp <code>`,
        ].join('\n'),
      );
    });
}
