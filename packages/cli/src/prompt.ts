import { createInterface } from 'node:readline/promises';
import { CliError, EXIT, usageError } from './exit-codes.ts';

/** A line typed at the terminal (prompt on stderr, so stdout stays the command's output). */
export async function ask(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw usageError(`${question.replace(/:\s*$/, '')} is required (no terminal to ask on)`);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/**
 * A secret, never taken from the command line (where `ps` shows it): typed at the terminal without
 * echo, or the first line of standard input when it is piped (`printf %s\n "$PW" | keyway login …`).
 */
export async function readSecret(question: string): Promise<string> {
  const secret = process.stdin.isTTY ? await typeHidden(question) : await firstLineOfStdin();
  if (!secret) throw usageError(`${question.replace(/:\s*$/, '')} is empty`);
  return secret;
}

async function firstLineOfStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

function typeHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (finish: () => void) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      finish();
    };
    const onData = (data: Buffer) => {
      for (const char of data.toString('utf8')) {
        if (char === '\r' || char === '\n') return done(() => resolve(typed));
        // Ctrl-C in raw mode arrives as a character, not as SIGINT.
        if (char === '\u0003') return done(() => reject(new CliError('cancelled', EXIT.usage)));
        typed = char === '\u007f' || char === '\b' ? typed.slice(0, -1) : typed + char;
      }
    };
    stdin.on('data', onData);
  });
}
