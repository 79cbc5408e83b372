// The releases pages' one script (CSP script-src 'self'): uploads through tus 1.0 with the file's
// SHA-256 computed here, progress, the scan's verdict in words, and the publisher's Publish button.
// Requests go to this site with the session cookie; Fetch Metadata marks them same-origin.

/** crypto.subtle.digest takes the whole file in memory: larger files go through the command line client. */
const HASH_LIMIT = 512 * 1024 * 1024;
/** one PATCH per chunk, so progress moves and a cut resumes from the last chunk */
const CHUNK = 4 * 1024 * 1024;
const SCAN_WAIT_MS = 60_000;

const hex = (buffer) => Array.from(new Uint8Array(buffer), (byte) => byte.toString(16).padStart(2, '0')).join('');
/** tus Upload-Metadata values are base64 of UTF-8 */
const base64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function refusalOf(answer) {
  try {
    const body = await answer.json();
    return body.error_description || body.error || `HTTP ${answer.status}`;
  } catch {
    return `HTTP ${answer.status}`;
  }
}

/** The file's state as the scanner left it, in words; undefined while it is still being scanned. */
function verdict(file) {
  if (file.state === 'clean') return { ok: true, text: `Clean: ${file.name} passed the virus scan.` };
  // the reason names what the scanner found (the signature) or why it could not judge the whole file
  if (file.state === 'infected') return { ok: false, text: `Refused: ${file.name} is ${file.reason || 'infected'}. It will never be downloadable.` };
  if (file.state === 'too_large') return { ok: false, text: `Refused: ${file.name} is too large for the virus scanner (${file.reason || 'not scanned whole'}). It will never be downloadable.` };
  return undefined;
}

async function upload(form) {
  const status = form.querySelector('.status');
  const progress = form.querySelector('progress');
  const button = form.querySelector('button[type=submit]');
  const say = (text, kind) => {
    status.textContent = text;
    status.dataset.kind = kind || '';
  };
  const file = form.elements.file.files[0];
  const version = form.elements.version ? form.elements.version.value.trim() : '';
  if (!file) return say('Choose a file first.', 'refused');
  if (file.size === 0) return say('The file is empty.', 'refused');
  if (file.size > HASH_LIMIT) return say('Files above 512 MiB are uploaded with the command line client (keyway release upload).', 'refused');
  button.disabled = true;
  try {
    say(`Computing the SHA-256 of ${file.name}…`);
    const sha256 = hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
    const metadata = { product: form.dataset.product, filename: file.name, sha256, ...(version ? { version } : {}) };
    const created = await fetch('/v1/uploads', {
      method: 'POST',
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Length': String(file.size),
        'Upload-Metadata': Object.entries(metadata)
          .map(([key, value]) => `${key} ${base64(value)}`)
          .join(','),
      },
    });
    if (created.status !== 201) return say(`Refused: ${await refusalOf(created)}`, 'refused');
    const location = new URL(created.headers.get('Location'), window.location.href).pathname;
    progress.hidden = false;
    let offset = 0;
    while (offset < file.size) {
      const chunk = file.slice(offset, Math.min(offset + CHUNK, file.size));
      const sent = await fetch(location, {
        method: 'PATCH',
        headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' },
        body: chunk,
      });
      if (sent.status !== 204) return say(`Refused: ${await refusalOf(sent)}`, 'refused');
      offset = Number(sent.headers.get('Upload-Offset'));
      progress.value = Math.round((offset / file.size) * 100);
      say(`Uploading ${file.name}: ${progress.value}%`);
    }
    say(`Uploaded ${file.name}; the virus scanner is checking it…`);
    const where = version
      ? `/v1/products/${encodeURIComponent(form.dataset.product)}/versions/${encodeURIComponent(version)}`
      : `/v1/products/${encodeURIComponent(form.dataset.product)}/locations/${encodeURIComponent(form.dataset.tenant)}`;
    const deadline = Date.now() + SCAN_WAIT_MS;
    while (Date.now() < deadline) {
      const answer = await fetch(where, { headers: { Accept: 'application/json' } });
      if (!answer.ok) return say(`Could not read the file's state: ${await refusalOf(answer)}`, 'refused');
      const found = (await answer.json()).files.find((f) => f.name === file.name && f.sha256 === sha256);
      const result = found && verdict(found);
      if (result) {
        say(result.text, result.ok ? 'clean' : 'refused');
        form.dataset.done = found.state;
        return;
      }
      if (found && found.state === 'scan_pending') say(`Uploaded ${file.name}; waiting for the virus scanner (it will be scanned before anyone can download it)…`);
      await pause(500);
    }
    say(`Uploaded ${file.name}; the scan is not finished yet. Reload the page later to see its state.`);
  } catch (err) {
    say(`The upload failed: ${err.message}. Try again.`, 'refused');
  } finally {
    button.disabled = false;
  }
}

async function publish(button) {
  const status = button.parentElement.querySelector('.status');
  button.disabled = true;
  const answer = await fetch(button.dataset.publish, { method: 'POST', headers: { Accept: 'application/json' } });
  if (answer.ok) {
    status.textContent = 'Published.';
    window.location.reload();
    return;
  }
  status.textContent = `Refused: ${await refusalOf(answer)}`;
  button.disabled = false;
}

for (const form of document.querySelectorAll('form[data-upload]')) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void upload(form);
  });
}
for (const button of document.querySelectorAll('button[data-publish]')) button.addEventListener('click', () => void publish(button));
