import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { Batch } from '@keyway/contracts';
import { ApiError } from './http.ts';
import { lines, streamedMessage } from './stream-line.ts';

const batch = {
  id: 'b-1',
  tenant: 'acme',
  topic: 'edr-events',
  seq: 1,
  createdAt: '2024-05-06T07:08:09.123Z',
  contentType: 'application/json',
  records: [{ event: 'login', user: 'ünïcødé "quoted" \\ \u2028', n: 1.5e-7, nested: { batch: { '"batch":': [] } } }],
};
/** what the topic service stores: a checked batch's JSON (services/topic batches/validate.ts storedBatch) */
const stored = (value: unknown) => Buffer.from(JSON.stringify(value));
/** a stream line laid out as the topic service writes it (services/topic routes/receive.ts receivedMessage): the stored bytes last */
const line = (batchBytes: Buffer, messageId = 'b-1') =>
  Buffer.concat([
    Buffer.from(`{"message_id":${JSON.stringify(messageId)},"lock_token":"8b0f0a4e-0000-4000-8000-000000000001","locked_until":"2026-01-01T00:00:00.000Z","delivery_count":1,"batch":`),
    batchBytes,
    Buffer.from('}'),
  ]);

describe('stream lines', () => {
  it('keeps the batch bytes of a line as the topic service writes it: byte-identical to serialising the validated batch', () => {
    const bytes = stored(Batch.parse(batch));
    const message = streamedMessage(line(bytes));
    expect(message.batch).toEqual(batch);
    expect(message.batchJson?.equals(bytes)).toBe(true);
    expect(message.batchJson?.toString('utf8')).toBe(JSON.stringify(message.batch));
    // the member's text inside a string is escaped, so it is not taken for the member
    const tricky = streamedMessage(line(bytes, 'x"batch":y'));
    expect(tricky.message_id).toBe('x"batch":y');
    expect(tricky.batchJson?.equals(bytes)).toBe(true);
  });

  it('gives no bytes when they are not the validated batch’s JSON: a key stripped, a default added, another key order', () => {
    const { contentType: _, ...withoutContentType } = batch;
    const { records, ...head } = batch;
    const reordered = { records, ...head };
    for (const variant of [{ ...batch, extra: 1 }, withoutContentType, reordered]) {
      const message = streamedMessage(line(stored(variant)));
      expect(message.batch).toEqual(Batch.parse(variant));
      expect(message.batchJson).toBeUndefined();
    }
  });

  it('parses any other layout whole, as JSON.parse would, without bytes', () => {
    const envelope = { message_id: 'b-1', lock_token: 'l', locked_until: 'u', delivery_count: 1 };
    const cases = [
      // the batch first: what follows `"batch":` is not one value
      `{"batch":${JSON.stringify(batch)},${JSON.stringify(envelope).slice(1)}`,
      // a key ending in `"batch` before the real member
      `{"x\\"batch":1,${JSON.stringify({ ...envelope, batch }).slice(1)}`,
      // two batch members: the last one counts
      `{"batch":{"id":"decoy"},${JSON.stringify({ ...envelope, batch }).slice(1)}`,
    ];
    for (const text of cases) {
      const message = streamedMessage(Buffer.from(text));
      expect(message).toEqual(expect.objectContaining({ batch }));
      expect(message.batchJson).toBeUndefined();
    }
  });

  it('throws the ErrorBody a failing stream ends with as an ApiError, anything else as a validation error', () => {
    let refused: unknown;
    try {
      streamedMessage(Buffer.from('{"error":"invalid_token","error_description":"the key expired"}'));
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(ApiError);
    expect(refused).toMatchObject({ status: 401, code: 'invalid_token', description: 'the key expired' });
    expect(() => streamedMessage(line(stored({ ...batch, seq: -1 })))).toThrow(ZodError);
    // `batch` (spelt with an escape, null) and then a key ending in `"batch`: the member cut at is not
    // `batch`; read as JSON.parse reads it, the line is not a message
    const head = '{"message_id":"b-1","lock_token":"l","locked_until":"u","delivery_count":1,"\\u0062atch":null,"x\\"batch":';
    expect(() => streamedMessage(Buffer.from(`${head}${JSON.stringify(batch)}}`))).toThrow(ZodError);
    expect(() => streamedMessage(Buffer.from('{"batch":'))).toThrow(SyntaxError);
  });

  it('splits on newlines across chunks, keeps empty lines (heartbeats) and a last line without newline', async () => {
    const text = 'first\n\nsecond ünï\nthird';
    const bytes = Buffer.from(text);
    // one byte a chunk: every line, and a multi-byte character, is spread over chunks
    const chunks = Array.from(bytes, (byte) => Buffer.from([byte]));
    const got: string[] = [];
    for await (const l of lines(Readable.from(chunks))) got.push(l.toString('utf8'));
    expect(got).toEqual(['first', '', 'second ünï', 'third']);
  });
});
