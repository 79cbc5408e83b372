import type { Response } from 'express';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text (and attribute values) into HTML: the five characters that could end an element or an attribute. */
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);

/** Same-origin files a page links to: stylesheets, and scripts (deferred, so they run once the page is parsed). */
export interface PageAssets {
  styles?: readonly string[];
  scripts?: readonly string[];
}

/** A plain HTML5 page of the services' own (PAS's login, the releases site): no referrer leaves it. */
export const htmlPage = (title: string, body: string, site = 'Keyway', assets: PageAssets = {}): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · ${escapeHtml(site)}</title>
${[...(assets.styles ?? []).map((href) => `<link rel="stylesheet" href="${escapeHtml(href)}">\n`), ...(assets.scripts ?? []).map((src) => `<script src="${escapeHtml(src)}" defer></script>\n`)].join('')}</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;

/** What a page may load besides nothing, each list a CSP source list (e.g. `'self'`); unset: none. */
export interface PageSources {
  script?: readonly string[];
  style?: readonly string[];
  /** fetch and XHR from the page's script */
  connect?: readonly string[];
}

/**
 * Sends a page nothing may load into (`default-src 'none'`) or frame, never cached. `formAction`:
 * where its forms may post, and where the redirects answering them may lead (CSP form-action governs
 * those too); none by default. `sources`: the scripts, styles and connections a page of the site's
 * own needs (same-origin files, never inline).
 */
export function sendHtml(res: Response, status: number, html: string, formAction: readonly string[] = [], sources: PageSources = {}): void {
  const allowed = (['script', 'style', 'connect'] as const).flatMap((kind) => {
    const list = sources[kind];
    return list && list.length > 0 ? [`${kind}-src ${list.join(' ')}`] : [];
  });
  res
    .status(status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': ["default-src 'none'", ...allowed, "base-uri 'none'", `form-action ${formAction.length > 0 ? formAction.join(' ') : "'none'"}`, "frame-ancestors 'none'"].join('; '),
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
    })
    .send(html);
}
