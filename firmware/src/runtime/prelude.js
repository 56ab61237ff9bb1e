// The fazt JavaScript prelude: evaluated once per app instance, before any app code.
//
// It builds the module system (require), console, fazt.*, timers and the invoke entry
// points on top of a few native functions in `__native` (implemented in Rust, scoped to
// the current app by Rust, never by anything JavaScript can pass in).
//
// The kernel's entry points (load, invoke, timers) are returned to Rust in a frozen
// object that no app code can reach: were they globals, an app could replace one, and
// the kernel would run the app's code outside its deadline.
(function (global) {
  'use strict';
  const native = global.__native;
  delete global.__native;
  const hooks = {};

  const MAX_REQUIRE_DEPTH = native.maxRequireDepth;

  // ---------- logging ----------
  function format(args) {
    return args.map((a) => {
      if (typeof a === 'string') return a;
      if (a instanceof Error) return a.stack ? `${a.name}: ${a.message}\n${a.stack}` : String(a);
      try { return JSON.stringify(a); } catch (e) { return String(a); }
    }).join(' ');
  }
  // Cut here as well as in Rust, so a huge line is not copied out of the heap whole.
  const MAX_LOG_CHARS = native.maxLogBytes;
  const slice = String.prototype.slice;
  const log = (level) => (...args) => {
    const text = format(args);
    native.log(level, text.length > MAX_LOG_CHARS ? slice.call(text, 0, MAX_LOG_CHARS + 1) : text, text.length);
  };
  global.console = Object.freeze({
    log: log('info'), info: log('info'), debug: log('debug'), warn: log('warn'), error: log('error'),
  });

  // ---------- timers (driven by the Rust event loop, bounded by the request deadline) ----------
  let timers = [];
  let nextTimerId = 1;
  global.setTimeout = function (fn, ms, ...args) {
    if (typeof fn !== 'function') throw new TypeError('setTimeout needs a function');
    const id = nextTimerId++;
    timers.push({ id, at: native.monotonicMs() + Math.max(0, Number(ms) || 0), fn, args });
    return id;
  };
  global.clearTimeout = function (id) { timers = timers.filter((t) => t.id !== id); };
  // Timers live only as long as the request that set them.
  hooks.resetTimers = function () { timers = []; };
  // Milliseconds until the next timer, or -1 when none is waiting.
  hooks.nextTimer = function () {
    if (timers.length === 0) return -1;
    const now = native.monotonicMs();
    return Math.max(0, Math.min(...timers.map((t) => t.at)) - now);
  };
  hooks.fireTimers = function () {
    const now = native.monotonicMs();
    const due = timers.filter((t) => t.at <= now).sort((a, b) => a.at - b.at);
    timers = timers.filter((t) => t.at > now);
    for (const t of due) t.fn(...t.args);
  };

  // ---------- fazt.* ----------
  function kvValue(text) { return text === undefined ? undefined : JSON.parse(text); }
  const kv = Object.freeze({
    get: async (key) => kvValue(native.kvGet(String(key))),
    set: async (key, value, options) => {
      const json = JSON.stringify(value);
      if (json === undefined) throw new TypeError('kv.set: the value must be JSON (not undefined or a function); use kv.delete to remove');
      let ttl = -1;
      if (options && options.ttl !== undefined) {
        ttl = Number(options.ttl);
        if (!Number.isFinite(ttl) || ttl <= 0) throw new TypeError('kv.set: ttl must be a positive number of milliseconds');
      }
      native.kvSet(String(key), json, ttl);
    },
    delete: async (key) => native.kvDelete(String(key)),
    list: async (prefix) => JSON.parse(native.kvList(prefix === undefined ? '' : String(prefix))),
  });
  // The kernel clock, not the system clock: Date.now() and new Date() follow the
  // timekeeper (NTP, peers, RTC), like every timestamp fazt writes.
  const time = Object.freeze({
    now: () => native.timeNow(),
    status: () => JSON.parse(native.timeStatus()),
  });
  const SystemDate = Date;
  function KernelDate(...args) {
    if (!new.target) return new SystemDate(native.timeNow()).toString();
    return Reflect.construct(SystemDate, args.length === 0 ? [native.timeNow()] : args, new.target);
  }
  KernelDate.prototype = SystemDate.prototype;
  KernelDate.now = () => native.timeNow();
  KernelDate.parse = SystemDate.parse;
  KernelDate.UTC = SystemDate.UTC;
  Object.defineProperty(SystemDate.prototype, 'constructor', { value: KernelDate, writable: true, configurable: true });
  global.Date = KernelDate;
  // Events: emitted as this app (the type goes under `app.`), read back as this app
  // sees them (its own and public ones); both are checked again in Rust.
  const events = Object.freeze({
    emit: async (type, data, options) => {
      const json = JSON.stringify(data === undefined ? null : data);
      if (json === undefined) throw new TypeError('events.emit: data must be JSON (not a function)');
      return JSON.parse(native.eventsEmit(String(type), json, !!(options && options.public)));
    },
    since: async (id, options) => JSON.parse(native.eventsSince(
      Number(id) || 0,
      options && options.type !== undefined ? String(options.type) : '',
      options && options.limit !== undefined ? Number(options.limit) : 100)),
  });
  // Outbound HTTP through the kernel's egress service: the allow-list, the address
  // rules, the limits and the circuit breakers are all checked in Rust. The answer is
  // { status, headers, body, url } with the body as text; a refusal or failure throws
  // an Error whose `code` is stable (host_not_allowed, private_address, too_large,
  // timeout, circuit_open, too_many_redirects, bad_url, ...).
  const net = Object.freeze({
    fetch: async (url, options) => {
      const o = options === undefined || options === null ? {} : options;
      const headers = o.headers === undefined || o.headers === null ? {} : o.headers;
      if (typeof headers !== 'object') throw new TypeError('net.fetch: headers must be an object');
      const pairs = Object.keys(headers).map((k) => [String(k), String(headers[k])]);
      let body = '';
      if (o.body !== undefined && o.body !== null) body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      if (typeof body !== 'string') throw new TypeError('net.fetch: body must be text or JSON');
      const method = o.method === undefined ? 'GET' : String(o.method);
      const answer = JSON.parse(native.netFetch(String(url), method, JSON.stringify(pairs), body));
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.ok;
    },
  });
  const app = JSON.parse(native.appInfo());
  global.fazt = Object.freeze({
    app: Object.freeze({ id: app.id, name: app.name, env: Object.freeze(app.env) }),
    log: Object.freeze({ info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') }),
    storage: Object.freeze({ kv }),
    time,
    events,
    net,
  });

  // ---------- modules ----------
  const cache = Object.create(null);
  function normalize(from, spec) {
    if (typeof spec !== 'string' || !(spec.startsWith('./') || spec.startsWith('../'))) {
      throw new Error(`require('${spec}'): only relative paths inside api/ can be required`);
    }
    const parts = from.split('/').slice(0, -1);
    for (const p of spec.split('/')) {
      if (p === '' || p === '.') continue;
      if (p === '..') { if (parts.length === 0) throw new Error(`require('${spec}'): outside the app`); parts.pop(); }
      else parts.push(p);
    }
    let path = parts.join('/');
    if (!path.startsWith('api/')) throw new Error(`require('${spec}'): outside the api/ folder`);
    if (!path.endsWith('.js') && !path.endsWith('.json')) path += '.js';
    return path;
  }
  function load(path, depth) {
    if (cache[path]) return cache[path].exports; // also breaks cycles: a partial exports object
    if (depth > MAX_REQUIRE_DEPTH) throw new Error(`require depth limit (${MAX_REQUIRE_DEPTH}) exceeded at ${path}`);
    const source = native.readModule(path);
    const module = { exports: {}, id: path, loaded: false };
    cache[path] = module;
    if (path.endsWith('.json')) { module.exports = JSON.parse(source); module.loaded = true; return module.exports; }
    const require = (spec) => load(normalize(path, spec), depth + 1);
    // The entry module runs in an async wrapper, which gives it top-level await (its
    // promise is awaited before its exports are used). Required modules run
    // synchronously, like Node's require, so their errors reach the caller at once; a
    // top-level await there is a SyntaxError that says so. The source starts on the
    // wrapper's first line, so stack line numbers match the file.
    const wrapper = depth === 0 ? 'async function' : 'function';
    const fn = native.compile(path, `(${wrapper} (module, exports, require, __filename) {${source}\n})`);
    try {
      const result = fn(module, module.exports, require, path);
      module.ready = Promise.resolve(result).then(() => { module.loaded = true; });
    } catch (e) {
      delete cache[path];
      throw e;
    }
    return module.exports;
  }

  // ---------- requests ----------
  // The result, { status, headers, body } with string headers and body, is read field by
  // field from Rust (no JSON round trip).
  function normalizeResponse(r) {
    if (r === undefined || r === null) return { status: 204, headers: {}, body: '' };
    if (typeof r === 'string') return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: r };
    // Numbers, booleans and arrays are answered as JSON.
    if (typeof r !== 'object' || Array.isArray(r)) return normalizeResponse({ json: r });
    if (r.status !== undefined && !(Number.isInteger(Number(r.status)) && r.status >= 100 && r.status <= 599)) {
      throw new RangeError(`response status ${r.status} is not an HTTP status (100-599)`);
    }
    const headers = {};
    for (const [k, v] of Object.entries(r.headers || {})) headers[String(k).toLowerCase()] = String(v);
    let status = r.status === undefined ? 200 : Number(r.status);
    let body = '';
    if (r.redirect !== undefined) {
      headers.location = String(r.redirect);
      if (r.status === undefined) status = 302;
    } else if (r.json !== undefined) {
      body = JSON.stringify(r.json);
      if (!headers['content-type']) headers['content-type'] = 'application/json';
    } else if (r.body !== undefined) {
      body = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
      if (!headers['content-type']) headers['content-type'] = typeof r.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json';
    }
    return { status, headers, body };
  }

  let handler = null;
  // Loads api/main.js (awaiting its top-level code) and finds the handler.
  hooks.loadMain = async function () {
    const exports = load('api/main.js', 0);
    await cache['api/main.js'].ready;
    const main = cache['api/main.js'].exports;
    handler = typeof main === 'function' ? main
      : (main && typeof main.handler === 'function') ? main.handler
      : (main && typeof main.default === 'function') ? main.default : null;
    if (!handler) throw new Error('api/main.js must export a function: module.exports = async function (request) { ... }');
    return exports !== undefined;
  };
  // The kernel builds `request` field by field; a body declared JSON is parsed here,
  // and one that does not parse is left as text only.
  function withJson(request, jsonBody) {
    if (jsonBody) {
      try { request.json = JSON.parse(request.body); } catch (_) { /* not JSON after all */ }
    }
    return request;
  }
  hooks.invoke = async function (request, jsonBody) {
    return normalizeResponse(await handler(withJson(request, jsonBody)));
  };
  // v0.7 apps: main.js at the root runs per request with `req` and `res` globals.
  hooks.invokeLegacy = async function (request, jsonBody, source) {
    withJson(request, jsonBody);
    const out = { status: 200, headers: {}, body: undefined };
    const res = {
      status(code) { out.status = Number(code); return res; },
      header(k, v) { out.headers[String(k).toLowerCase()] = String(v); return res; },
      setHeader(k, v) { return res.header(k, v); },
      send(body) {
        if (typeof body === 'string') { out.body = body; return res; }
        if (!out.headers['content-type']) out.headers['content-type'] = 'application/json';
        out.body = JSON.stringify(body);
        return res;
      },
      json(value) { out.headers['content-type'] = 'application/json'; out.body = JSON.stringify(value); return res; },
      redirect(url) { out.status = 302; out.headers.location = String(url); out.body = ''; return res; },
    };
    const req = Object.assign({}, request, { path: request.url.pathname, query: request.url.query });
    const fn = native.compile('main.js', `(async function (req, res, require) {${source}\n})`);
    await fn(req, res, (spec) => { throw new Error(`require('${spec}') needs an api/ folder (v0.10 apps)`); });
    const r = { status: out.status, headers: out.headers };
    if (out.body !== undefined) r.body = out.body;
    return normalizeResponse(out.body === undefined && out.status === 200 ? { status: 204, headers: out.headers } : r);
  };
  return Object.freeze(hooks);
})(globalThis);
