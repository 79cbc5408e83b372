import { CommanderError } from 'commander';
import { ZodError } from 'zod';
import { ApiError, UnreachableError } from '@keyway/clients';
import { ConfigError } from '@keyway/kit';

/** What `keyway` exits with; scripts may rely on these (README "CLI", `keyway --help`). */
export const EXIT = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  notFound: 3,
  conflict: 4,
  auth: 5,
  unavailable: 6,
  /** `keyway audit verify`: a hash chain is broken (an event was changed, removed or reordered) */
  auditBroken: 7,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  unexpected error
  2  usage error (bad arguments, options or input; the API answered 400)
  3  not found (404)
  4  conflict (409: already exists, not suspended, rotation too early)
  5  authentication failed or forbidden (no credentials, 401, 403)
  6  unavailable, retry later (service unreachable, 429, 502-504)
  7  audit verify: a hash chain is broken (the first broken link is printed)`;

/**
 * A refusal decided by the CLI itself, with the exit code it stands for: one of EXIT, or a code a
 * command documents in its own help for an outcome of its own.
 */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: ExitCode | number,
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage);

function forStatus(status: number): ExitCode {
  if (status === 400 || status === 413 || status === 415) return EXIT.usage;
  if (status === 401 || status === 403) return EXIT.auth;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status === 429 || status === 502 || status === 503 || status === 504) return EXIT.unavailable;
  return EXIT.unexpected;
}

/** The exit code and the one line printed on stderr for anything a command throws. */
export function describeFailure(err: unknown): { exitCode: number; message: string } {
  if (err instanceof CliError) return { exitCode: err.exitCode, message: err.message };
  if (err instanceof ApiError) {
    const message = `${err.description || err.code} (${err.code}, HTTP ${err.status})`;
    // RFC 9470 step-up, and an operator login without a code: what the person does next
    if (err.code === 'insufficient_user_authentication') return { exitCode: EXIT.auth, message: `${message}: log in again with --otp (keyway login --otp <code>)` };
    if (err.code === 'invalid_grant' && /requires a second factor/.test(err.description))
      return { exitCode: EXIT.auth, message: `${message}: keyway login --otp <code> (no factor yet: keyway mfa enroll)` };
    return { exitCode: forStatus(err.status), message };
  }
  if (err instanceof UnreachableError) return { exitCode: EXIT.unavailable, message: err.message };
  // a setting given both ways (X and X_FILE), or a file it names that cannot be read
  if (err instanceof ConfigError) return { exitCode: EXIT.usage, message: err.issues.join('; ') };
  if (err instanceof ZodError) {
    return { exitCode: EXIT.usage, message: err.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ') };
  }
  // commander has printed its own message already (unknown option, missing argument, help).
  if (err instanceof CommanderError) return { exitCode: err.exitCode === 0 ? EXIT.ok : EXIT.usage, message: '' };
  return { exitCode: EXIT.unexpected, message: err instanceof Error ? err.message : String(err) };
}
