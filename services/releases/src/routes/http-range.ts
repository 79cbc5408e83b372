import type { ByteRange } from '../storage/blob-store.ts';

/**
 * What to send for a GET of a representation of `size` bytes with strong ETag `etag` (RFC 9110):
 * - If-None-Match (§13.1.2, weak comparison) naming it, or `*`: 304;
 * - one `Range: bytes=…` (§14.2): 206 with that range, or 416 when it is unsatisfiable; several ranges,
 *   another unit or a malformed header: the whole file (a server may ignore Range, §14.2);
 * - If-Range (§13.1.5): the range only when it is exactly this strong ETag; a date or another ETag: the whole file.
 */
export type RangeAnswer = { status: 304 } | { status: 200 } | { status: 206; range: ByteRange } | { status: 416 };

const opaqueTags = (header: string) => header.split(',').map((tag) => tag.trim().replace(/^W\//, ''));

export function rangeAnswer(headers: { ifNoneMatch?: string | undefined; range?: string | undefined; ifRange?: string | undefined }, size: number, etag: string): RangeAnswer {
  if (headers.ifNoneMatch !== undefined) {
    const tags = opaqueTags(headers.ifNoneMatch);
    if (tags.includes('*') || tags.includes(etag)) return { status: 304 };
  }
  if (headers.range === undefined) return { status: 200 };
  if (headers.ifRange !== undefined && headers.ifRange.trim() !== etag) return { status: 200 };
  const match = /^bytes=(\d*)-(\d*)$/.exec(headers.range.trim());
  if (!match || (match[1] === '' && match[2] === '')) return { status: 200 };
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '') {
    // a suffix: the last N bytes (§14.1.2); N = 0 is unsatisfiable
    const length = Number(last);
    if (length === 0 || size === 0) return { status: 416 };
    return { status: 206, range: { start: Math.max(0, size - length), end: size - 1 } };
  }
  const start = Number(first);
  if (start >= size) return { status: 416 };
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  // first-pos greater than last-pos: invalid, so the header is ignored (§14.1.2)
  if (last !== '' && Number(last) < start) return { status: 200 };
  return { status: 206, range: { start, end } };
}
