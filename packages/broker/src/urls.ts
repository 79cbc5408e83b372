import amqp from 'amqplib';
import type { ChannelModel, Options } from 'amqplib';

/**
 * The nodes of AMQP_URL: one URL, or several nodes of one cluster separated by commas (tried in
 * that order). Blanks around each are ignored; an empty entry is not a node.
 */
export const amqpUrls = (value: string): string[] =>
  value
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');

/** A broker URL fit for a message: scheme, host, port and vhost, never the user or password it holds. */
export function redactedUrl(url: string): string {
  try {
    const { protocol, host, pathname } = new URL(url);
    return `${protocol}//${host}${pathname === '/' ? '' : pathname}`;
  } catch {
    return '(unparsable url)';
  }
}

/**
 * Connects to the first of `urls` that answers, starting at index `from` and going round the list
 * once; rejects with the last refusal when none does. The refusals name each node without its
 * credentials.
 */
export async function connectFirst(urls: readonly string[], options: Options.Connect & Record<string, unknown> = {}, from = 0): Promise<{ conn: ChannelModel; index: number }> {
  if (urls.length === 0) throw new Error('no rabbitmq url given');
  const refusals: string[] = [];
  let last: unknown;
  for (let k = 0; k < urls.length; k++) {
    const index = (from + k) % urls.length;
    const url = urls[index] as string;
    try {
      return { conn: await amqp.connect(url, options), index };
    } catch (err) {
      last = err;
      refusals.push(`${redactedUrl(url)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (urls.length === 1) throw last;
  throw new Error(`no rabbitmq node answered (${refusals.join('; ')})`, { cause: last });
}
