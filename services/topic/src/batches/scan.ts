import { InvalidRequest } from '@keyway/kit';

/**
 * Payload scanning, run on the parsed body before anything else looks at it. A batch is refused
 * (400 invalid_request naming an offending place) when it holds:
 * - a key `__proto__`, `constructor` or `prototype` at any depth: consumers that merge records
 *   into objects would otherwise be open to prototype pollution;
 * - containers nested deeper than MAX_DEPTH (the body itself is level 1): deep nesting exhausts
 *   the stack of recursive consumers;
 * - a string (key or value) with a NUL character or an unpaired UTF-16 surrogate: NUL truncates
 *   strings in C-based sinks, and a lone surrogate cannot be encoded as UTF-8, so sinks would
 *   mangle or reject the record.
 * The walk is iterative so the scanner itself cannot overflow on hostile input.
 */
export const MAX_DEPTH = 32;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
// With the u flag a well-formed surrogate pair is one code point, so \p{Cs} only matches lone halves.
const BAD_STRING = /\u0000|\p{Cs}/u;

// Paths echo client keys back in error_description; keep them short.
const shown = (path: string) => (path.length > 120 ? `${path.slice(0, 117)}...` : path);

export function scanPayload(body: unknown): void {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [{ value: body, path: 'body', depth: 1 }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { value, path, depth } = item;
    if (typeof value === 'string') {
      if (BAD_STRING.test(value)) throw new InvalidRequest(`${shown(path)}: strings must not contain NUL characters or unpaired surrogates`);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_DEPTH) throw new InvalidRequest(`${shown(path)}: nested deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(value)) {
      value.forEach((child, i) => stack.push({ value: child, path: `${path}[${i}]`, depth: depth + 1 }));
      continue;
    }
    for (const [key, child] of Object.entries(value)) {
      const where = `${path}.${key}`;
      if (FORBIDDEN_KEYS.has(key)) throw new InvalidRequest(`${shown(where)}: the key "${key}" is not allowed`);
      if (BAD_STRING.test(key)) throw new InvalidRequest(`${shown(path)}: keys must not contain NUL characters or unpaired surrogates`);
      stack.push({ value: child, path: where, depth: depth + 1 });
    }
  }
}
