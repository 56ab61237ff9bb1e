// fazt admin dashboard. Plain ES module, no dependencies.
// Every piece of data goes into the DOM through textContent or attributes, never innerHTML.

const $ = (sel, root = document) => root.querySelector(sel);

/** Builds an element; children that are not Nodes become text nodes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Returns the URL if it is http(s), so data can never smuggle a javascript: link. */
function safeUrl(u) {
  try {
    const url = new URL(u, location.href);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch { return null; }
}

// ---------- formatting ----------

function humanBytes(n) {
  if (n == null || !Number.isFinite(Number(n))) return '—';
  n = Number(n);
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return `${n.toFixed(n < 10 ? 1 : 0)} ${units[i]}`;
}

function humanDuration(secs) {
  secs = Math.max(0, Math.floor(Number(secs) || 0));
  const d = Math.floor(secs / 86400), h = Math.floor(secs % 86400 / 3600),
    m = Math.floor(secs % 3600 / 60), s = secs % 60;
  if (d) return `${d}d ${h}h ${m}m`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const UNITS = [['year', 31536000], ['month', 2592000], ['week', 604800], ['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];

function relTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const diff = (d.getTime() - Date.now()) / 1000;
  if (Math.abs(diff) < 45) return 'just now';
  for (const [unit, secs] of UNITS) {
    if (Math.abs(diff) >= secs || unit === 'second') return rtf.format(Math.round(diff / secs), unit);
  }
}

/** A <time> showing relative time, with the absolute time as tooltip. */
function timeEl(iso, empty = 'never') {
  if (!iso) return el('span', { class: 'muted' }, empty);
  const d = new Date(iso);
  const abs = Number.isNaN(d.getTime()) ? String(iso) : `${d.toLocaleString()} (${iso})`;
  return el('time', { datetime: iso, title: abs, 'data-rel': '' }, relTime(iso));
}

// Keep relative times fresh while the page stays open.
setInterval(() => {
  for (const t of document.querySelectorAll('time[data-rel]')) t.textContent = relTime(t.dateTime);
}, 30000);

// ---------- API ----------

class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    Object.assign(this, { status, code, retryAfter });
  }
}

function parseRetryAfter(v) {
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v);
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}

/** Calls the same-origin JSON API; throws ApiError with the server's code and message. */
async function api(method, path, body) {
  const headers = { Accept: 'application/json', 'X-Requested-With': 'fazt' };
  const opts = { method, credentials: 'same-origin', headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the fazt server. Check that it is running.');
  }
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { /* not JSON */ } }
  if (!res.ok) {
    const err = (data && data.error) || {};
    const e = new ApiError(res.status, err.code || `http_${res.status}`,
      err.message || `Request failed (${res.status} ${res.statusText})`.replace(' )', ')'),
      parseRetryAfter(res.headers.get('Retry-After')));
    if (res.status === 401 && path !== '/api/login' && path !== '/api/me') sessionExpired();
    throw e;
  }
  return data || {};
}

const appPath = (id) => `/api/apps/${encodeURIComponent(id)}`;
const filePath = (id, p) => `${appPath(id)}/files/${String(p).split('/').map(encodeURIComponent).join('/')}`;

// ---------- UI helpers ----------

let toastTimer;
function toast(msg, isError = false) {
  const t = $('#toast');
  t.textContent = msg;
  t.classList.toggle('toast-error', isError);
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 6000 : 3000);
}

function showPageError(err) {
  const box = $('#page-error');
  if (!err) { box.hidden = true; box.textContent = ''; return; }
  box.textContent = err.message || String(err);
  box.hidden = false;
}

async function copyText(text, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    // Clipboard API needs a secure context; fall back to a hidden textarea.
    const ta = el('textarea', { readonly: true, class: 'offscreen' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    try { ok = document.execCommand('copy'); } catch { ok = false; }
    ta.remove();
  }
  if (button) {
    const old = button.dataset.label || button.textContent;
    button.dataset.label = old;
    button.textContent = ok ? 'Copied' : 'Select & copy manually';
    setTimeout(() => { button.textContent = old; }, 1500);
  }
  return ok;
}

function badge(text, kind) { return el('span', { class: `badge badge-${kind}` }, text); }

/** Runs fn with the button disabled, reporting failures in a toast. */
async function busy(button, fn) {
  button.disabled = true;
  try { await fn(); } catch (e) { if (e.status !== 401) toast(e.message, true); } finally { button.disabled = false; }
}

// ---------- login / session ----------

let lockTimer = null;

function showLogin(message) {
  document.title = 'Sign in · fazt';
  $('#boot').hidden = true;
  $('#app-view').hidden = true;
  $('#login-view').hidden = false;
  clearNewToken();
  setLoginError(message || null);
  const u = $('#login-username');
  (u.value ? $('#login-password') : u).focus();
}

function setLoginError(msg) {
  const e = $('#login-error');
  e.textContent = msg || '';
  e.hidden = !msg;
}

function lockLogin(secs, message) {
  const btn = $('#login-submit');
  const until = Date.now() + secs * 1000;
  clearInterval(lockTimer);
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(lockTimer);
      lockTimer = null;
      btn.disabled = false;
      setLoginError(`${message} You can try again now.`);
      return;
    }
    btn.disabled = true;
    setLoginError(`${message} Try again in ${humanDuration(left)}.`);
  };
  tick();
  lockTimer = setInterval(tick, 1000);
}

function sessionExpired() {
  if (!$('#app-view').hidden) showLogin('Your session has ended. Please sign in again.');
}

$('#login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const btn = $('#login-submit');
  if (lockTimer) return;
  const username = $('#login-username').value.trim();
  const password = $('#login-password').value;
  if (!username || !password) {
    setLoginError('Enter your username and password.');
    return;
  }
  setLoginError(null);
  btn.disabled = true;
  btn.textContent = 'Signing in…';
  try {
    const r = await api('POST', '/api/login', { username, password });
    $('#login-password').value = '';
    showDashboard(r.user || username);
  } catch (e) {
    if (e.code === 'rate_limited' && e.retryAfter) {
      lockLogin(e.retryAfter, e.message);
    } else {
      setLoginError(e.message);
      $('#login-password').select();
    }
  } finally {
    btn.textContent = 'Sign in';
    if (!lockTimer) btn.disabled = false;
  }
});

$('#logout').addEventListener('click', async () => {
  try { await api('POST', '/api/logout', {}); } catch { /* signed out either way */ }
  showLogin();
  history.replaceState(null, '', location.pathname);
});

function showDashboard(user) {
  $('#boot').hidden = true;
  $('#login-view').hidden = true;
  $('#app-view').hidden = false;
  $('#user-name').textContent = user;
  route();
}

// ---------- routing ----------

let seq = 0; // drops responses of views the user already left

function parseRoute() {
  const [tab, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  if (tab === 'tokens' || tab === 'system') return { tab };
  if (tab === 'apps' && rest.length && rest[0]) {
    let id = rest.join('/');
    try { id = decodeURIComponent(id); } catch { /* keep raw */ }
    return { tab: 'apps', appId: id };
  }
  return { tab: 'apps' };
}

async function route() {
  if ($('#app-view').hidden) return;
  const r = parseRoute();
  const my = ++seq;
  showPageError(null);
  for (const a of document.querySelectorAll('.tabs a')) {
    if (a.dataset.tab === r.tab) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const section = r.appId ? 'app' : r.tab;
  for (const s of ['apps', 'app', 'tokens', 'system']) $(`#section-${s}`).hidden = s !== section;
  if (section !== 'tokens') clearNewToken();
  const titles = { apps: 'Apps', app: 'App', tokens: 'API tokens', system: 'System' };
  document.title = `${titles[section]} · fazt admin`;
  try {
    if (section === 'apps') await renderApps(my);
    else if (section === 'app') await renderApp(my, r.appId);
    else if (section === 'tokens') await loadTokens(my);
    else await renderSystem(my);
  } catch (e) {
    if (my === seq && e.status !== 401) showPageError(e);
  }
}

window.addEventListener('hashchange', route);

// ---------- apps ----------

function appRow(a) {
  const url = safeUrl(a.url);
  const open = () => { location.hash = `#/apps/${encodeURIComponent(a.id)}`; };
  return el('tr', {
    class: 'clickable', tabindex: 0, dataset: { app: a.name, id: a.id },
    onclick: (ev) => { if (!ev.target.closest('a, button')) open(); },
    onkeydown: (ev) => { if (ev.key === 'Enter' && ev.target === ev.currentTarget) open(); },
  },
  el('td', { class: 'app-name' },
    url ? el('a', { href: url, target: '_blank', rel: 'noopener' }, a.name) : a.name,
    a.system ? [' ', badge('system', 'system')] : null),
  el('td', { class: 'app-size num', title: `${a.size_bytes ?? 0} bytes` }, humanBytes(a.size_bytes)),
  el('td', { class: 'app-files num' }, String(a.file_count ?? 0)),
  el('td', { class: 'app-deployed' }, timeEl(a.deployed_at, 'not deployed')),
  el('td', { class: 'actions' },
    // System apps keep their names: the node serves and updates them by name.
    a.system ? null : el('button', {
      type: 'button', class: 'btn btn-small app-rename',
      onclick: (ev) => renameApp(a, ev.currentTarget),
    }, 'Rename'),
    el('a', { href: `#/apps/${encodeURIComponent(a.id)}`, class: 'btn btn-small app-details' }, 'Details')));
}

/** Asks for a new name; the API's own message (name taken, bad name) is shown on failure. */
function renameApp(a, btn) {
  const answer = prompt(`New name for the app "${a.name}":\n\nIt is served under the new name at once and no longer under the old one. Its files, data and settings stay with it.`, a.name);
  const name = answer == null ? '' : answer.trim();
  if (!name || name === a.name) return;
  busy(btn, async () => {
    const r = await api('POST', `${appPath(a.id)}/rename`, { name });
    toast(`Renamed ${a.name} to ${r.name || name}`);
    await renderApps(seq);
  });
}

async function renderApps(my) {
  const { apps = [] } = await api('GET', '/api/apps');
  if (my !== seq) return;
  const sorted = [...apps].sort((x, y) => (x.system - y.system) || String(x.name).localeCompare(y.name));
  $('#apps-table tbody').replaceChildren(...sorted.map(appRow));
  const user = apps.filter((a) => !a.system);
  const total = apps.reduce((n, a) => n + (Number(a.size_bytes) || 0), 0);
  $('#apps-summary').textContent = `${apps.length} app${apps.length === 1 ? '' : 's'} · ${humanBytes(total)}`;
  $('#apps-table-wrap').hidden = apps.length === 0;
  $('#apps-empty').hidden = user.length > 0;
  const host = location.hostname.replace(/^admin\./, '');
  $('#apps-empty-url').textContent = `${location.protocol}//blog.${host}${location.port ? `:${location.port}` : ''}/`;
}

$('#apps-refresh').addEventListener('click', (ev) => busy(ev.currentTarget, route));

async function renderApp(my, id) {
  $('#app-title').textContent = 'Loading…';
  $('#app-badge').replaceChildren();
  $('#app-meta').replaceChildren();
  $('#app-files-table tbody').replaceChildren();
  $('#app-delete').hidden = true;
  $('#app-open').hidden = true;
  let a;
  try {
    a = await api('GET', appPath(id));
  } catch (e) {
    if (my === seq) $('#app-title').textContent = e.status === 404 ? 'App not found' : 'App';
    throw e;
  }
  if (my !== seq) return;
  document.title = `${a.name} · fazt admin`;
  $('#app-title').textContent = a.name;
  if (a.system) $('#app-badge').append(badge('system app', 'system'));
  const url = safeUrl(a.url);
  const open = $('#app-open');
  open.hidden = !url;
  if (url) open.href = url;
  const del = $('#app-delete');
  del.hidden = !!a.system;
  del.dataset.id = a.id;
  del.dataset.name = a.name;

  const files = [...(a.files || [])].sort((x, y) => String(x.path).localeCompare(y.path));
  const meta = [
    ['URL', url ? el('a', { href: url, target: '_blank', rel: 'noopener' }, a.url) : (a.url || '—')],
    ['Size', `${humanBytes(a.size_bytes)}`],
    ['Files', String(a.file_count ?? files.length)],
    ['Deployed', timeEl(a.deployed_at, 'not deployed')],
    ['ID', el('code', {}, a.id)],
  ];
  $('#app-meta').replaceChildren(...meta.map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, v))));

  $('#app-files-table tbody').replaceChildren(...files.map((f) => el('tr', { dataset: { path: f.path } },
    el('td', { class: 'file-path' }, el('code', {}, f.path)),
    el('td', { class: 'file-size num', title: `${f.size} bytes` }, humanBytes(f.size)),
    el('td', { class: 'file-type' }, f.content_type || '—'),
    el('td', { class: 'file-hash', title: f.hash || '' }, el('code', {}, f.hash ? `${String(f.hash).slice(0, 12)}…` : '—')),
    el('td', { class: 'actions' }, el('a', { class: 'btn btn-small file-view', href: filePath(a.id, f.path), target: '_blank', rel: 'noopener' }, 'View')))));
  if (!files.length) {
    $('#app-files-table tbody').append(el('tr', {}, el('td', { colspan: 5, class: 'muted' }, 'This app has no files.')));
  }
}

$('#app-delete').addEventListener('click', (ev) => {
  const btn = ev.currentTarget;
  const { id, name } = btn.dataset;
  if (!confirm(`Delete the app "${name}"?\n\nIts files are removed and its URL stops serving. This cannot be undone from the dashboard.`)) return;
  busy(btn, async () => {
    await api('DELETE', appPath(id));
    toast(`Deleted ${name}`);
    location.hash = '#/apps';
  });
});

// ---------- tokens ----------

function clearNewToken() {
  $('#new-token').textContent = '';
  $('#new-token-cli').textContent = '';
  $('#new-token-box').hidden = true;
}

function tokenRow(t) {
  const revoked = !!t.revoked_at;
  return el('tr', { dataset: { token: t.id }, class: revoked ? 'revoked' : null },
    el('td', { class: 'token-name' }, t.name),
    el('td', { class: 'token-prefix' }, el('code', {}, `${t.prefix || ''}…`)),
    el('td', { class: 'token-created' }, timeEl(t.created_at, '—')),
    el('td', { class: 'token-last-used' }, timeEl(t.last_used_at, 'never')),
    el('td', { class: 'token-state' }, revoked
      ? el('span', { title: `Revoked ${new Date(t.revoked_at).toLocaleString()}` }, badge('revoked', 'revoked'), ' ', timeEl(t.revoked_at))
      : badge('active', 'ok')),
    el('td', { class: 'actions' }, revoked ? null : el('button', {
      type: 'button', class: 'btn btn-small btn-danger token-revoke',
      onclick: (ev) => revokeToken(t, ev.currentTarget),
    }, 'Revoke')));
}

async function loadTokens(my) {
  const { tokens = [] } = await api('GET', '/api/tokens');
  if (my !== seq) return;
  const sorted = [...tokens].sort((x, y) => (!!x.revoked_at - !!y.revoked_at) || String(y.created_at).localeCompare(String(x.created_at)));
  $('#tokens-table tbody').replaceChildren(...sorted.map(tokenRow));
  $('#tokens-empty').hidden = tokens.length > 0;
}

function revokeToken(t, btn) {
  if (!confirm(`Revoke the token "${t.name}" (${t.prefix}…)?\n\nAnything using it loses access immediately.`)) return;
  busy(btn, async () => {
    await api('DELETE', `/api/tokens/${encodeURIComponent(t.id)}`);
    toast(`Revoked ${t.name}`);
    await loadTokens(seq);
  });
}

$('#token-create-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('#token-name');
  const name = input.value.trim();
  if (!name) { toast('Give the token a name, e.g. the machine that will use it.', true); input.focus(); return; }
  busy($('#token-create'), async () => {
    const r = await api('POST', '/api/tokens', { name });
    input.value = '';
    $('#new-token').textContent = r.token;
    $('#new-token-cli').textContent = `fazt client set-auth-token ${r.token} --server ${location.origin}`;
    $('#new-token-box').hidden = false;
    $('#new-token-box').scrollIntoView({ block: 'nearest' });
    await loadTokens(seq);
  });
});

for (const b of document.querySelectorAll('[data-copy]')) {
  b.addEventListener('click', () => copyText($(`#${b.dataset.copy}`).textContent, b));
}
$('#new-token-dismiss').addEventListener('click', clearNewToken);

// ---------- system ----------

const HEALTH = [
  ['status', 'Status', (v) => String(v)],
  ['version', 'Version', (v) => String(v)],
  ['uptime_secs', 'Uptime', humanDuration],
  ['apps', 'Apps', (v) => String(v)],
  ['db_size_bytes', 'Database size', humanBytes],
  ['memory_rss_bytes', 'Memory (RSS)', humanBytes],
  ['cache.entries', 'Cache entries', (v) => String(v)],
  ['cache.bytes', 'Cache size', humanBytes],
  ['cache.capacity_bytes', 'Cache capacity', humanBytes],
  ['cache.hits', 'Cache hits', (v) => String(v)],
  ['cache.misses', 'Cache misses', (v) => String(v)],
  ['cache.hit_rate', 'Cache hit rate', (v) => `${(v * 100).toFixed(1)}%`],
];

function stat(key, label, raw, text) {
  const dd = el('dd', { dataset: { health: key } }, text);
  if (raw != null && typeof raw !== 'object') dd.dataset.value = String(raw);
  if (key === 'status') dd.classList.add(raw === 'ok' ? 'ok' : 'bad');
  return el('div', { class: 'stat' }, el('dt', {}, label), dd);
}

function renderHealth(h) {
  const flat = { ...h };
  const c = h.cache || {};
  for (const [k, v] of Object.entries(c)) flat[`cache.${k}`] = v;
  const lookups = (Number(c.hits) || 0) + (Number(c.misses) || 0);
  if (lookups) flat['cache.hit_rate'] = (Number(c.hits) || 0) / lookups;
  const known = new Set(HEALTH.map(([k]) => k));
  const items = HEALTH.filter(([k]) => flat[k] != null).map(([k, label, fmt]) => stat(k, label, flat[k], fmt(flat[k])));
  // Fields added to the API later still show up, unformatted.
  for (const [k, v] of Object.entries(flat)) {
    if (known.has(k) || v == null || typeof v === 'object') continue;
    items.push(stat(k, k.replace(/[._]/g, ' '), v, String(v)));
  }
  $('#health').replaceChildren(...items);
}

function renderHttps(t) {
  const modes = { off: 'HTTPS is off (https.mode off).', lan: 'HTTPS with the node\'s own LAN CA', acme: 'HTTPS with certificates from an ACME CA' };
  $('#https-mode').textContent = (modes[t.mode] || t.mode) + (t.port ? ` on port ${t.port}.` : '');
  $('#https-ca').hidden = !t.lan_ca;
  if (t.lan_ca) $('#https-ca-fingerprint').textContent = t.lan_ca.fingerprint_sha256;
  const certs = t.certs || [];
  $('#https-certs').hidden = !certs.length;
  $('#https-certs tbody').replaceChildren(...certs.map((c) => el('tr', { dataset: { cert: c.name } },
    el('td', {}, c.name), el('td', {}, c.source), el('td', {}, (c.names || []).join(', ')), el('td', {}, timeEl(c.not_after)))));
  const err = t.acme && t.acme.last_error;
  $('#https-acme-error').hidden = !err;
  if (err) $('#https-acme-error').textContent = `ACME: ${err}` + (t.acme.next_attempt_at ? ` (next attempt ${t.acme.next_attempt_at})` : '');
}

async function renderSystem(my) {
  const [health, config, https] = await Promise.allSettled([api('GET', '/api/system/health'), api('GET', '/api/system/config'), api('GET', '/api/tls')]);
  if (my !== seq) return;
  if (https.status === 'fulfilled') renderHttps(https.value);
  else $('#https-mode').textContent = `HTTPS status unavailable: ${https.reason.message}`;
  if (health.status === 'fulfilled') renderHealth(health.value);
  else $('#health').replaceChildren(el('p', { class: 'alert alert-error' }, `Health unavailable: ${health.reason.message}`));
  const tbody = $('#config-table tbody');
  if (config.status === 'fulfilled') {
    const entries = Object.entries(config.value.config || {}).sort(([a], [b]) => a.localeCompare(b));
    tbody.replaceChildren(...entries.map(([k, v]) => el('tr', { dataset: { key: k } },
      el('td', { class: 'config-key' }, el('code', {}, k)),
      el('td', { class: 'config-value' }, typeof v === 'string' ? v : JSON.stringify(v)))));
    if (!entries.length) tbody.append(el('tr', {}, el('td', { colspan: 2, class: 'muted' }, 'No configuration values.')));
  } else {
    tbody.replaceChildren(el('tr', {}, el('td', { colspan: 2, class: 'muted' }, `Configuration unavailable: ${config.reason.message}`)));
  }
}

$('#system-refresh').addEventListener('click', (ev) => busy(ev.currentTarget, route));

// ---------- start ----------

(async () => {
  try {
    const me = await api('GET', '/api/me');
    showDashboard(me.user);
  } catch (e) {
    showLogin(e.status === 401 ? null : e.message);
  }
})();
