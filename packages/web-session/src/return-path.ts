const BASE = 'https://site.invalid';

/**
 * Where the browser goes back after its login: the link it asked for, only as a path on this site.
 * Anything a browser could read as another origin falls back to `/` (RFC 9700 §4.11, open redirects):
 * an absolute URL (a request target in absolute form), a scheme-relative `//host`, a backslash
 * (browsers read `/\host` as `//host`), control characters.
 */
export function returnPath(target: string | undefined): string {
  if (target === undefined || target.length > 2000 || !target.startsWith('/') || target.startsWith('//')) return '/';
  if ([...target].some((c) => c === '\\' || c <= ' ' || c === '\x7f')) return '/';
  let url: URL;
  try {
    url = new URL(target, BASE);
  } catch {
    return '/';
  }
  if (url.origin !== BASE) return '/';
  return `${url.pathname}${url.search}`;
}
