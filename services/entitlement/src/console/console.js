// The Keyway operator console: plain ES module, no framework, no build. It talks to this origin only
// (the entitlement service's admin API and its /console/ endpoints) and keeps the operator's tokens
// in this module's memory: never in localStorage, sessionStorage or a cookie, so a reload signs out.

/** Refresh this long before the access token expires, so no call goes out with an expired one. */
const REFRESH_MARGIN_MS = 60_000;
const AUDIT_EVENTS_SHOWN = 20;

const session = { accessToken: '', refreshToken: '', email: '', timer: 0 };
let selectedTenant = '';

const $ = (id) => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element;
};

/** An element with text content only: data from the API never becomes markup. */
function el(tag, text, attributes = {}) {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  return element;
}

class ApiError extends Error {
  constructor(status, code, description) {
    super(description || code);
    this.status = status;
    this.code = code;
  }
}

async function request(path, { method = 'GET', body, auth = true } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (auth) headers.authorization = `Bearer ${session.accessToken}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (response.status === 204) return undefined;
  const data = await response.json().catch(() => ({}));
  // The services answer errors as { error, error_description } (the OAuth shape): the description is for people.
  if (!response.ok) throw new ApiError(response.status, data.error ?? 'error', data.error_description ?? `the service answered ${response.status}`);
  return data;
}

/** An admin call; an access token revoked or expired meanwhile is refreshed once and the call repeated. */
async function api(path, options) {
  try {
    return await request(path, options);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401 && err.code === 'invalid_token' && session.refreshToken)) throw err;
    await refresh();
    return request(path, options);
  }
}

function keepTokens(tokens) {
  session.accessToken = tokens.access_token;
  session.refreshToken = tokens.refresh_token;
  clearTimeout(session.timer);
  session.timer = setTimeout(() => void refresh().catch(() => undefined), Math.max(tokens.expires_in * 1000 - REFRESH_MARGIN_MS, 5_000));
}

async function refresh() {
  try {
    keepTokens(await request('/console/session/refresh', { method: 'POST', body: { refresh_token: session.refreshToken }, auth: false }));
  } catch (err) {
    endSession();
    showError(`Your session has ended (${err.message}); sign in again.`);
    throw err;
  }
}

function endSession() {
  clearTimeout(session.timer);
  Object.assign(session, { accessToken: '', refreshToken: '', email: '', timer: 0 });
  selectedTenant = '';
  $('who').hidden = true;
  $('workspace').hidden = true;
  $('tenant').hidden = true;
  $('sign-in').hidden = false;
}

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
}

function showStatus(message) {
  $('status').textContent = message;
}

/**
 * Runs one user action: clears the previous error, disables the control while it runs, and shows
 * the API's error_description when it fails.
 */
async function act(control, action) {
  $('error').hidden = true;
  showStatus('');
  if (control) control.disabled = true;
  try {
    await action();
  } catch (err) {
    showError(err instanceof Error ? err.message : String(err));
  } finally {
    if (control) control.disabled = false;
  }
}

const enc = encodeURIComponent;
const tenantPath = (tenant) => `/v1/tenants/${enc(tenant)}`;

// ---- tenants ----

async function loadTenants() {
  const page = await api('/v1/tenants?limit=500');
  const body = $('tenant-table').querySelector('tbody');
  body.replaceChildren(
    ...page.tenants.map((tenant) => {
      const row = el('tr');
      if (tenant.id === selectedTenant) row.className = 'selected';
      row.append(el('td', tenant.id), el('td', tenant.name), el('td', tenant.status, { class: `badge-${tenant.status}` }), el('td', tenant.feeds.join(', ') || '–'));
      const open = el('button', 'Open', { type: 'button', 'aria-label': `Open tenant ${tenant.id}` });
      open.addEventListener('click', () => void act(open, () => selectTenant(tenant.id)));
      const cell = el('td');
      cell.append(open);
      row.append(cell);
      return row;
    }),
  );
  const more = $('tenant-more');
  more.hidden = !page.next_cursor;
  more.textContent = page.next_cursor ? 'More tenants exist than shown here; use `keyway tenant list` for all of them.' : '';
}

async function selectTenant(id) {
  selectedTenant = id;
  const [tenant] = await Promise.all([api(tenantPath(id)), loadUsers(id), loadFeeds(id)]);
  showTenant(tenant);
  $('key-result').textContent = '';
  $('tenant').hidden = false;
  await Promise.all([loadTenants(), loadAudit(id), loadDownloads(id)]);
}

function showTenant(tenant) {
  $('tenant-id').textContent = tenant.id;
  $('tenant-name').textContent = tenant.name;
  const status = $('tenant-status');
  status.textContent = tenant.status;
  status.className = `badge-${tenant.status}`;
  $('tenant-suspend').hidden = tenant.status !== 'active';
  $('tenant-resume').hidden = tenant.status !== 'suspended';
}

// ---- users ----

async function loadUsers(tenant) {
  const { users } = await api(`${tenantPath(tenant)}/users`);
  $('user-table')
    .querySelector('tbody')
    .replaceChildren(
      ...users.map((user) => {
        const row = el('tr');
        const products = user.products?.length ? ` on ${user.products.join(', ')}` : '';
        row.append(el('td', user.email), el('td', `${user.roles.join(', ')}${products}`), el('td', user.id, { class: 'hint' }));
        const remove = el('button', 'Remove', { type: 'button', class: 'danger', 'aria-label': `Remove user ${user.email}` });
        remove.addEventListener(
          'click',
          () =>
            void act(remove, async () => {
              if (!window.confirm(`Remove ${user.email}? Their sessions and SAS keys are revoked.`)) return;
              await api(`${tenantPath(tenant)}/users/${enc(user.id)}`, { method: 'DELETE' });
              showStatus(`Removed ${user.email}.`);
              await Promise.all([loadUsers(tenant), loadAudit(tenant)]);
            }),
        );
        const cell = el('td');
        cell.append(remove);
        row.append(cell);
        return row;
      }),
    );
  if (users.length === 0) $('user-table').querySelector('tbody').append(emptyRow(4, 'No users yet.'));
}

function emptyRow(columns, text) {
  const row = el('tr');
  row.append(el('td', text, { colspan: String(columns), class: 'hint' }));
  return row;
}

// ---- feeds ----

async function loadFeeds(tenant) {
  const { feeds } = await api(`${tenantPath(tenant)}/feeds`);
  const items = feeds.map((feed) => {
    const item = el('li');
    const subscriptions = feed.subscriptions.length ? ` (subscriptions: ${feed.subscriptions.join(', ')})` : '';
    item.append(el('span', `${feed.name}${subscriptions}`));
    const revoke = el('button', 'Revoke', { type: 'button', class: 'danger', 'aria-label': `Revoke feed ${feed.name}` });
    revoke.addEventListener(
      'click',
      () =>
        void act(revoke, async () => {
          if (!window.confirm(`Revoke ${feed.name} from ${tenant}? Sessions and SAS keys using it are revoked.`)) return;
          await api(`${tenantPath(tenant)}/feeds/${enc(feed.name)}`, { method: 'DELETE' });
          showStatus(`Revoked ${feed.name}.`);
          await Promise.all([loadFeeds(tenant), loadTenants(), loadAudit(tenant)]);
        }),
    );
    item.append(revoke);
    return item;
  });
  $('feed-list').replaceChildren(...(items.length ? items : [el('li', 'No feeds yet.', { class: 'hint' })]));
}

// ---- audit ----

/** "2025-01-02T03:04:05.678Z" → "2025-01-02 03:04:05Z": the second is enough to read a trail by eye. */
const shortTime = (iso) => (typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');

/**
 * A panel the console fills from another service (the audit trail, the release downloads): a table of
 * what `list` finds in the answer, or, for any other answer (not deployed, not allowed, down), why not.
 */
async function loadPanel(boxId, path, { what, list, empty, titles, cells }) {
  const box = $(boxId);
  const hint = (text) => box.replaceChildren(el('p', text, { class: 'hint' }));
  let items;
  try {
    items = list(await api(path));
  } catch (err) {
    hint(`${what} not available${err instanceof ApiError ? ` (${err.message})` : ''}.`);
    return;
  }
  if (!Array.isArray(items)) return hint(`${what} not available.`);
  if (items.length === 0) return hint(empty);
  const table = el('table');
  const head = el('thead');
  const header = el('tr');
  for (const title of titles) header.append(el('th', title, { scope: 'col' }));
  head.append(header);
  const body = el('tbody');
  for (const item of items) {
    const row = el('tr');
    row.append(...cells(item).map((cell) => el('td', cell)));
    body.append(row);
  }
  table.append(head, body);
  box.replaceChildren(table);
}

const loadAudit = (tenant) =>
  loadPanel('audit', `/console/tenants/${enc(tenant)}/audit-events?limit=${AUDIT_EVENTS_SHOWN}`, {
    what: 'Audit',
    list: (page) => page?.events,
    empty: 'No audit events for this tenant yet.',
    titles: ['Time', 'Action', 'Outcome', 'Subject', 'Service'],
    cells: (event) => [shortTime(event.time), event.action ?? '', event.outcome ?? '', event.subject ?? '–', event.service ?? ''],
  });

const loadDownloads = (tenant) =>
  loadPanel('downloads', `/console/tenants/${enc(tenant)}/downloads`, {
    what: 'Downloads',
    list: (report) => report?.downloads,
    empty: 'No downloads for this tenant yet.',
    titles: ['Time', 'Subject', 'File', 'Bytes', 'Range'],
    cells: (d) => [shortTime(d.time), d.subject ?? '–', `${d.product} ${d.version} ${d.file}`, String(d.bytes), d.range ?? 'whole file'],
  });

// ---- wiring ----

/** A form field's list: names separated by commas, semicolons or spaces. */
const listIn = (value) =>
  String(value ?? '')
    .split(/[\s,;]+/)
    .filter(Boolean);

function submitted(formId, handler) {
  const form = $(formId);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void act(form.querySelector('button[type="submit"]'), () => handler(new FormData(form), form));
  });
}

submitted('sign-in-form', async (data, form) => {
  const email = String(data.get('email')).trim();
  const tokens = await request('/console/session', { method: 'POST', body: { email, password: String(data.get('password')), otp: String(data.get('otp')).trim() }, auth: false });
  form.reset();
  keepTokens(tokens);
  session.email = email;
  $('who-email').textContent = email;
  $('who').hidden = false;
  $('sign-in').hidden = true;
  $('workspace').hidden = false;
  await loadTenants();
  showStatus(`Signed in as ${email}.`);
});

$('sign-out').addEventListener(
  'click',
  (event) =>
    void act(event.currentTarget, async () => {
      const refreshToken = session.refreshToken;
      endSession();
      // RFC 7009: revoking the refresh token ends the whole session, the access token included.
      await request('/console/session/revoke', { method: 'POST', body: { refresh_token: refreshToken }, auth: false });
      showStatus('Signed out.');
    }),
);

submitted('create-tenant-form', async (data, form) => {
  const id = String(data.get('id')).trim();
  await api('/v1/tenants', { method: 'POST', body: { id, name: String(data.get('name')).trim(), feeds: listIn(data.get('feeds')) } });
  form.reset();
  showStatus(`Created tenant ${id}.`);
  await selectTenant(id);
});

submitted('add-user-form', async (data, form) => {
  const email = String(data.get('email')).trim();
  const password = String(data.get('password'));
  await api(`${tenantPath(selectedTenant)}/users`, {
    method: 'POST',
    body: { email, roles: [String(data.get('role'))], products: listIn(data.get('products')), ...(password ? { password } : {}) },
  });
  form.reset();
  showStatus(`Added ${email} to ${selectedTenant}.`);
  await Promise.all([loadUsers(selectedTenant), loadAudit(selectedTenant)]);
});

submitted('grant-feed-form', async (data, form) => {
  const feed = String(data.get('feed')).trim();
  await api(`${tenantPath(selectedTenant)}/feeds/${enc(feed)}`, { method: 'PUT' });
  form.reset();
  showStatus(`Granted ${feed} to ${selectedTenant}.`);
  await Promise.all([loadFeeds(selectedTenant), loadTenants(), loadAudit(selectedTenant)]);
});

for (const [id, verb] of [
  ['tenant-suspend', 'suspend'],
  ['tenant-resume', 'resume'],
]) {
  $(id).addEventListener(
    'click',
    (event) =>
      void act(event.currentTarget, async () => {
        if (verb === 'suspend' && !window.confirm(`Suspend ${selectedTenant}? Every session and SAS key of it is revoked.`)) return;
        showTenant(await api(`${tenantPath(selectedTenant)}/${verb}`, { method: 'POST' }));
        showStatus(`${verb === 'suspend' ? 'Suspended' : 'Resumed'} ${selectedTenant}.`);
        await Promise.all([loadTenants(), loadAudit(selectedTenant)]);
      }),
  );
}

for (const button of document.querySelectorAll('button.rotate')) {
  button.addEventListener(
    'click',
    () =>
      void act(button, async () => {
        const key = button.dataset.key;
        if (key === 'primary' && !window.confirm(`Rotate the primary key of ${selectedTenant}? SAS keys signed with it stop working.`)) return;
        const rotated = await api(`/console/tenants/${enc(selectedTenant)}/sas-keys/rotate`, { method: 'POST', body: { key } });
        $('key-result').textContent = `Rotated the ${rotated.rotated} key; new SAS keys are signed with the ${rotated.signing_with}.`;
        await loadAudit(selectedTenant);
      }),
  );
}
