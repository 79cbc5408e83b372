import type { Readable } from 'node:stream';
import { type Batch, ErrorBody, ReceivedMessage } from '@keyway/contracts';
import { ApiError } from './http.ts';

/** A streamed message, with its batch's JSON as the line carried it when that is exactly the batch's. */
export interface StreamedMessage extends ReceivedMessage {
  /**
   * The batch's JSON bytes as received (the topic service's stored bytes), set only when they are
   * the JSON of `batch` itself: the same keys in the schema's order, nothing stripped or defaulted.
   * A sink writing JSON writes them as they are rather than serialising the batch again.
   */
  batchJson?: Buffer;
}

/**
 * Newline-delimited lines of a stream, as bytes; a trailing line without newline is yielded too.
 * Split on the bytes (a newline byte is never part of a multi-byte character): a line spread over
 * chunks is joined once, at its newline, and nothing is searched twice.
 */
export async function* lines(body: Readable): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer>) {
    let start = 0;
    for (let newline = chunk.indexOf(0x0a); newline >= 0; newline = chunk.indexOf(0x0a, start)) {
      const tail = chunk.subarray(start, newline);
      yield parts.length === 0 ? tail : Buffer.concat([...parts, tail]);
      parts = [];
      start = newline + 1;
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  }
  if (parts.length > 0) yield Buffer.concat(parts);
}

const BATCH_MEMBER = Buffer.from('"batch":');
const CLOSE_BRACE = 0x7d;
/** the HTTP status of an error an open stream ends with (an ErrorBody line after the 200) */
const STREAM_ERROR_STATUS: Record<string, number> = { invalid_token: 401, insufficient_scope: 403, subscription_not_found: 404, temporarily_unavailable: 503 };

/**
 * A line's JSON value, and the bytes of its `batch` member when the line ends with it. The topic
 * service writes the batch last, as the bytes it stored (a zod-checked batch's JSON.stringify): the
 * line is parsed in two parts, the envelope up to `"batch":` and the batch alone, so those bytes are
 * known to be exactly one JSON value, the one validated. Any other layout is parsed whole, without bytes.
 */
function parse(line: Buffer): { value: unknown; batchJson?: Buffer } {
  const member = line.indexOf(BATCH_MEMBER);
  if (member > 0 && line[line.length - 1] === CLOSE_BRACE) {
    const start = member + BATCH_MEMBER.length;
    const batchJson = line.subarray(start, line.length - 1);
    try {
      // A match inside a string leaves it unterminated; a key merely ending in `"batch` (`"x\"batch":`)
      // or an earlier `batch` member parses, but then `batch` is not the last key; and what follows
      // must parse alone, as one value: otherwise the line is parsed whole.
      const envelope: unknown = JSON.parse(`${line.toString('utf8', 0, start)}null}`);
      if (isObject(envelope) && envelope.batch === null && Object.keys(envelope).at(-1) === 'batch') {
        envelope.batch = JSON.parse(batchJson.toString('utf8'));
        return { value: envelope, batchJson };
      }
    } catch {
      // not this layout
    }
  }
  return { value: JSON.parse(line.toString('utf8')) };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** the batch's output has exactly the input's keys in the same order: its JSON.stringify is the input's */
function sameKeys(input: unknown, output: Batch): boolean {
  if (!isObject(input)) return false;
  const from = Object.keys(input);
  const to = Object.keys(output);
  return from.length === to.length && from.every((key, i) => key === to[i]);
}

/**
 * One non-empty line of the stream: a ReceivedMessage (validated with its schema), or the ErrorBody
 * a failing stream ends with, thrown as an ApiError. Throws on a line that is neither.
 */
export function streamedMessage(line: Buffer): StreamedMessage {
  const { value, batchJson } = parse(line);
  const message = ReceivedMessage.safeParse(value);
  if (message.success) {
    const { batch } = message.data;
    return batchJson !== undefined && sameKeys((value as { batch: unknown }).batch, batch) ? { ...message.data, batchJson } : message.data;
  }
  const error = ErrorBody.safeParse(value);
  if (error.success) throw new ApiError(STREAM_ERROR_STATUS[error.data.error] ?? 500, error.data.error, error.data.error_description ?? '');
  throw message.error;
}
