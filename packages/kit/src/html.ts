import type { Response } from 'express';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text (and attribute values) into HTML: the five characters that could end an element or an attribute. */
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);

/** A plain HTML5 page of the services' own (PAS's login, the releases site): no referrer leaves it. */
export const htmlPage = (title: string, body: string, site = 'Keyway'): string =>
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · ${escapeHtml(site)}</title>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;

/**
 * Sends a page nothing may load into (`default-src 'none'`) or frame, never cached. `formAction`:
 * where its forms may post, and where the redirects answering them may lead (CSP form-action governs
 * those too); none by default.
 */
export function sendHtml(res: Response, status: number, html: string, formAction: readonly string[] = []): void {
  res
    .status(status)
    .set({
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': `default-src 'none'; base-uri 'none'; form-action ${formAction.length > 0 ? formAction.join(' ') : "'none'"}; frame-ancestors 'none'`,
      'Cache-Control': 'no-store',
      Pragma: 'no-cache',
    })
    .send(html);
}
