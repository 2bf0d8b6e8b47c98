// The HMI's only way to the plant: the HTTP API with the login token (docs/api.md), and the
// live event stream, read with fetch() because EventSource cannot send an Authorization header.

const KEY = 'petra.session';

/** The login, kept in sessionStorage: it lasts as long as the tab and is never shared with
 *  other tabs or written to disk like localStorage. */
export const session = {
  get() {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch { return null; }
  },
  set(s) { sessionStorage.setItem(KEY, JSON.stringify(s)); },
  clear() { sessionStorage.removeItem(KEY); },
};

/** A refused or failed call: the server's status, error code and message for people. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** Called once when the server says the token is no longer good (401). */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(f) { onUnauthorized = f; }

/** `POST /api/v1/login`; stores the token. */
export async function login(user, password) {
  const r = await fetch('api/v1/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ user, password }),
  });
  const body = await r.json().catch(() => null);
  if (!r.ok) throw new ApiError(r.status, body?.error, body?.message || `login failed (${r.status})`);
  // When the token ends, on this browser's clock: the server's `expires` minus its `Date`, so
  // a browser whose clock is off does not log out too early or too late.
  const serverNow = Date.parse(r.headers.get('Date') || '');
  const left = Date.parse(body.expires) - (Number.isNaN(serverNow) ? Date.now() : serverNow);
  session.set({ token: body.token, expires: body.expires, until: Date.now() + left, user });
  return body;
}

/** One API call with the token. JSON in and out (`text: true` for the metrics text). A 401
 *  ends the session; every other refusal throws an ApiError with the server's message. */
export async function api(method, path, body, { text = false, signal } = {}) {
  const s = session.get();
  const headers = {};
  if (s) headers.Authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method, headers, signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', `cannot reach Petra (${e.message}); is it running?`);
  }
  if (r.status === 401) {
    onUnauthorized('Your session has ended; log in again.');
    throw new ApiError(401, 'unauthorized', 'not logged in');
  }
  if (!r.ok) {
    const b = await r.json().catch(() => null);
    throw new ApiError(r.status, b?.error || 'http', b?.message || `${r.status} ${r.statusText}`);
  }
  return text ? r.text() : r.json();
}

// ---------------------------------------------------------------------------------------------
// Live state: the latest signal and alarm values, fed by the event stream.

/** Everything the stream said last, by name; `changes` tells listeners (`signal`, `alarm`,
 *  `stream` events, the detail being the object or the stream state). */
export const live = {
  signals: new Map(),
  alarms: new Map(),
  changes: new EventTarget(),
  state: 'off',
};

function emit(type, detail) {
  live.changes.dispatchEvent(new CustomEvent(type, { detail }));
}

/** Parses a Server-Sent Events byte stream incrementally (the HTML spec's rules, for the
 *  fields the API sends: `event`, `data`, comments). `onEvent(type, data)` per event. */
export class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.decoder = new TextDecoder();
    this.buf = '';
    this.type = '';
    this.data = [];
    this.lastCR = false;
  }

  push(bytes) {
    this.feed(this.decoder.decode(bytes, { stream: true }));
  }

  feed(text) {
    let s = this.buf + text;
    // A CR at the end of an earlier chunk already ended its line; skip the LF of its CRLF
    // (chunks may be empty: a partial UTF-8 character decodes to nothing yet).
    if (this.lastCR && s.length) {
      if (s.startsWith('\n')) s = s.slice(1);
      this.lastCR = false;
    }
    let start = 0;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(s.slice(start, i));
      if (c === 13) {
        if (i + 1 < s.length) { if (s.charCodeAt(i + 1) === 10) i++; }
        else this.lastCR = true;
      }
      start = i + 1;
    }
    this.buf = s.slice(start);
  }

  line(l) {
    if (l === '') {
      if (this.data.length) this.onEvent(this.type || 'message', this.data.join('\n'));
      this.type = '';
      this.data = [];
      return;
    }
    if (l.startsWith(':')) return; // a comment: the server's keep-alive
    const colon = l.indexOf(':');
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? '' : l.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
  }
}

/** How long a stream may be silent before it is taken for dead (the server sends a keep-alive
 *  comment every 15 s). */
const SILENCE_MS = 40_000;
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;

/** `GET /api/v1/events`, kept open while logged in: a snapshot of every signal and alarm on
 *  connect, then changes; reconnects with capped exponential backoff and jitter. */
export class EventStream {
  constructor() {
    this.abort = null;
    this.stopped = true;
    this.backoff = BACKOFF_MIN_MS;
    this.retryTimer = 0;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.abort?.abort();
    this.setState('off');
  }

  setState(state, extra) {
    live.state = state;
    emit('stream', { state, ...extra });
  }

  async connect() {
    const s = session.get();
    if (this.stopped || !s) return;
    const abort = new AbortController();
    this.abort = abort;
    let watchdog = 0;
    const alive = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => abort.abort(), SILENCE_MS);
    };
    this.setState('connecting');
    let why = '';
    try {
      alive();
      const r = await fetch('api/v1/events', {
        headers: { Authorization: `Bearer ${s.token}`, Accept: 'text/event-stream' },
        signal: abort.signal,
        cache: 'no-store',
      });
      if (r.status === 401) {
        clearTimeout(watchdog);
        onUnauthorized('Your session has ended; log in again.');
        return;
      }
      if (!r.ok || !r.body) throw new Error(`the server answered ${r.status}`);
      const parser = new SseParser((type, data) => this.dispatch(type, data));
      const reader = r.body.getReader();
      this.setState('live');
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        alive();
        // A stream that delivers is healthy: the next failure starts the backoff afresh.
        this.backoff = BACKOFF_MIN_MS;
        parser.push(value);
      }
      why = 'the server ended the stream';
    } catch (e) {
      why = e.name === 'AbortError' ? 'no data for a while' : e.message;
    } finally {
      clearTimeout(watchdog);
    }
    if (this.stopped || abort !== this.abort) return;
    const wait = this.backoff * (0.75 + Math.random() * 0.5);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.setState('reconnecting', { why, inMs: wait });
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  dispatch(type, data) {
    let obj;
    try { obj = JSON.parse(data); } catch { return; }
    if (type === 'signal') {
      live.signals.set(obj.name, obj);
      emit('signal', obj);
    } else if (type === 'alarm') {
      live.alarms.set(obj.name, obj);
      emit('alarm', obj);
    }
  }
}
