import type { Response } from 'express';
import { escapeHtml, htmlPage, sendHtml } from '@keyway/kit';

/** A plain HTML5 page (no script, no style) for a sign-in that did not complete, with a way to start again. */
export function sendRefusalPage(res: Response, status: number, code: string, description: string): void {
  const title = status === 403 ? 'Access denied' : status >= 500 ? 'Try again later' : 'Sign-in not completed';
  sendHtml(
    res,
    status,
    htmlPage(
      title,
      `<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(description)}</p>
<p><code>${escapeHtml(code)}</code></p>
<p><a href="/">Start again</a></p>`,
    ),
  );
}
