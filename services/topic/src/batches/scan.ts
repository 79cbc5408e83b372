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
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what this pattern is here to find.
const BAD_STRING = /\u0000|\p{Cs}/u;

// Paths echo client keys back in error_description; keep them short.
const shown = (path: string) => (path.length > 120 ? `${path.slice(0, 117)}...` : path);

/**
 * Where a value sits, as a chain back to the body. The readable path (`body.records[3].user`) is
 * only built for the error message: a batch that passes (nearly all of them) costs no strings.
 */
interface Place {
  parent: Place | undefined;
  key: string | number;
}
const BODY: Place = { parent: undefined, key: 'body' };

function pathOf(place: Place): string {
  const parts: string[] = [];
  for (let p: Place | undefined = place; p; p = p.parent) parts.push(p === BODY ? 'body' : typeof p.key === 'number' ? `[${p.key}]` : `.${p.key}`);
  return parts.reverse().join('');
}

const badString = (place: Place): Error => new InvalidRequest(`${shown(pathOf(place))}: strings must not contain NUL characters or unpaired surrogates`);

export function scanPayload(body: unknown): void {
  if (typeof body === 'string') {
    if (BAD_STRING.test(body)) throw badString(BODY);
    return;
  }
  // Only containers go on the stack; leaves are checked where they are found.
  const stack: Array<{ value: object; place: Place; depth: number }> = [];
  if (body !== null && typeof body === 'object') stack.push({ value: body, place: BODY, depth: 1 });
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { value, place, depth } = item;
    if (depth > MAX_DEPTH) throw new InvalidRequest(`${shown(pathOf(place))}: nested deeper than ${MAX_DEPTH} levels`);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const child: unknown = value[i];
        if (typeof child === 'string') {
          if (BAD_STRING.test(child)) throw badString({ parent: place, key: i });
        } else if (child !== null && typeof child === 'object') stack.push({ value: child, place: { parent: place, key: i }, depth: depth + 1 });
      }
      continue;
    }
    for (const key of Object.keys(value)) {
      if (FORBIDDEN_KEYS.has(key)) throw new InvalidRequest(`${shown(pathOf({ parent: place, key }))}: the key "${key}" is not allowed`);
      if (BAD_STRING.test(key)) throw new InvalidRequest(`${shown(pathOf(place))}: keys must not contain NUL characters or unpaired surrogates`);
      const child: unknown = (value as Record<string, unknown>)[key];
      if (typeof child === 'string') {
        if (BAD_STRING.test(child)) throw badString({ parent: place, key });
      } else if (child !== null && typeof child === 'object') stack.push({ value: child, place: { parent: place, key }, depth: depth + 1 });
    }
  }
}
