// The login pages' one script (CSP script-src 'self'): passkeys through the browser's own WebAuthn
// JSON helpers (PublicKeyCredential.parse*OptionsFromJSON, toJSON). Without WebAuthn the buttons stay
// hidden and the password form works as before. The credential is posted in an ordinary form, so
// PAS answers with its usual redirect or the page again.

const say = (form, text) => {
  const status = form.querySelector('.passkey-status');
  status.textContent = text;
};

/** Why the browser gave no passkey, in words (WebAuthn §5.1.3/§5.1.4: NotAllowedError covers "cancelled", "timed out" and "none here"). */
function failure(err) {
  if (err?.name === 'NotAllowedError') return 'No passkey was used: none is saved for this site on this device, or the request was cancelled.';
  if (err?.name === 'InvalidStateError') return 'This device already holds a passkey for this account.';
  return `The passkey could not be used (${err?.message || err}).`;
}

async function signIn(form) {
  say(form, 'Waiting for your passkey…');
  try {
    const answer = await fetch(form.dataset.options, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ request: form.elements.request.value }),
      credentials: 'same-origin',
    });
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) return say(form, body.error_description || `The sign-in cannot continue (HTTP ${answer.status}).`);
    const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(body.options) });
    form.elements.credential.value = JSON.stringify(credential.toJSON());
    form.submit();
  } catch (err) {
    say(form, failure(err));
  }
}

async function register(form) {
  say(form, 'Waiting for your device…');
  try {
    const options = JSON.parse(form.dataset.options);
    const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
    form.elements.credential.disabled = false;
    form.elements.credential.value = JSON.stringify(credential.toJSON());
    form.submit();
  } catch (err) {
    say(form, failure(err));
  }
}

/** After a password sign-in PAS offers a passkey only to a device that can make one itself (screen lock, fingerprint). */
async function offerPasskeyAfterPassword() {
  const form = document.querySelector('form[action="/oauth2/login"]');
  if (!form || !(await PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable().catch(() => false))) return;
  const field = document.createElement('input');
  field.type = 'hidden';
  field.name = 'offer_passkey';
  field.value = '1';
  form.append(field);
}

if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
  for (const button of document.querySelectorAll('button[data-passkey]')) {
    button.hidden = false;
    button.addEventListener('click', () => (button.dataset.passkey === 'register' ? register(button.form) : signIn(button.form)));
  }
  void offerPasskeyAfterPassword();
}
