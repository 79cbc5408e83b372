import { escapeHtml, htmlPage } from '@keyway/kit';

/** The login page's second step: a code from the authenticator app, or a recovery code. */
export const codePage = ({ request, client, action, message }: { request: string; client: string; action: string; message?: string }): string =>
  htmlPage(
    'Two-step verification',
    `<h1>Two-step verification</h1>
<p>to continue to <strong>${escapeHtml(client)}</strong></p>
${message ? `<p role="alert">${escapeHtml(message)}</p>\n` : ''}<form method="post" action="${escapeHtml(action)}">
<input type="hidden" name="request" value="${escapeHtml(request)}">
<p><label for="otp">Code from your authenticator app, or a recovery code</label><br><input id="otp" name="otp" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="64" autofocus></p>
<p><button type="submit">Verify</button></p>
</form>`,
  );
