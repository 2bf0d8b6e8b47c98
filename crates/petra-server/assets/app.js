// The HMI's shell: login and logout, the header, hash routes (#/signals, #/alarms, #/trends,
// #/status, #/login) and the one event stream every view reads.

import { session, login, live, EventStream, setUnauthorizedHandler, ApiError } from './api.js';
import * as signals from './signals.js';
import * as alarms from './alarms.js';
import * as trends from './trends.js';
import * as status from './status.js';

const views = { signals, alarms, trends, status };
const $ = (id) => document.getElementById(id);
const stream = new EventStream();

let unmount = null;
/** Where to go after logging in (the page a lapsed session was on). */
let next = '#/signals';

function route() {
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const view = views[path];
  if (!session.get() || path === 'login' || !view) {
    if (session.get() && !view && path !== 'login') { location.replace('#/signals'); return; }
    if (view) next = location.hash;
    showLogin();
    return;
  }
  stream.start();
  armExpiry();
  $('login').hidden = true;
  $('top').hidden = false;
  $('who').textContent = session.get().user;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#/${path}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  unmount?.();
  const root = $('view');
  root.replaceChildren();
  root.hidden = false;
  unmount = view.mount(root, new URLSearchParams(query || '')) || null;
  document.title = `${root.querySelector('h1')?.textContent || 'Petra'} · Petra`;
  // Keyboard and screen-reader users land on the new view's heading.
  root.querySelector('h1')?.focus({ preventScroll: true });
}

/** Logs out when the token ends: the event stream, once open, would otherwise go on showing
 *  live values past the login's end. */
let expiryTimer = 0;
function armExpiry() {
  clearTimeout(expiryTimer);
  const until = session.get()?.until;
  if (!until) return;
  const left = until - Date.now();
  // setTimeout takes at most 2^31-1 ms (~24 days): a longer login waits in steps.
  if (left > 2 ** 30) { expiryTimer = setTimeout(armExpiry, 2 ** 30); return; }
  expiryTimer = setTimeout(() => {
    if (!location.hash.startsWith('#/login')) next = location.hash;
    logout('Your session has expired; log in again.');
  }, Math.max(0, left));
}

function showLogin(message, kind = 'error') {
  unmount?.();
  unmount = null;
  $('view').replaceChildren();
  $('view').hidden = true;
  $('top').hidden = true;
  $('login').hidden = false;
  document.title = 'Log in · Petra';
  const err = $('login-error');
  err.textContent = message || '';
  err.className = kind;
  $('login-user').focus();
  $('login-user').select();
}

function logout(message, kind) {
  clearTimeout(expiryTimer);
  stream.stop();
  // The token and every view's remembered filter: nothing of this login stays in the tab.
  sessionStorage.clear();
  live.signals.clear();
  live.alarms.clear();
  if (location.hash !== '#/login') history.pushState(null, '', '#/login');
  showLogin(message, kind);
}

setUnauthorizedHandler((message) => {
  if (!session.get()) return;
  if (!location.hash.startsWith('#/login')) next = location.hash;
  logout(message);
});

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const button = $('login-submit');
  const err = $('login-error');
  err.textContent = '';
  err.className = 'error';
  button.disabled = true;
  try {
    stream.stop();
    await login($('login-user').value.trim(), $('login-password').value);
    $('login-password').value = '';
    const to = next.startsWith('#/login') ? '#/signals' : next;
    next = '#/signals';
    if (location.hash === to) route(); else location.hash = to;
  } catch (x) {
    err.textContent = x instanceof ApiError ? x.message : `cannot log in: ${x.message}`;
    $('login-password').select();
  } finally {
    button.disabled = false;
  }
});

$('logout').addEventListener('click', () => {
  // A shared operator screen: the next person starts from empty fields.
  $('login-user').value = '';
  $('login-password').value = '';
  next = '#/signals';
  logout('Logged out.', 'note');
});

// The connection state and the count of alarms that need an acknowledgement, in the header.
live.changes.addEventListener('stream', (e) => {
  const { state, why, inMs } = e.detail;
  const el = $('conn');
  el.dataset.state = state;
  el.textContent = {
    live: 'live',
    connecting: 'connecting…',
    reconnecting: `reconnecting in ${Math.ceil((inMs || 0) / 1000)} s`,
    off: 'offline',
  }[state] || state;
  el.title = why ? `the event stream stopped: ${why}` : '';
});

function countUnacked() {
  let n = 0;
  for (const a of live.alarms.values()) {
    if ((a.state === 'active_unacked' || a.state === 'rtn_unacked') && !a.shelved_until) n++;
  }
  const badge = $('alarm-count');
  badge.textContent = n ? String(n) : '';
  badge.hidden = n === 0;
  badge.setAttribute('aria-label', `${n} unacknowledged`);
}
let countQueued = false;
live.changes.addEventListener('alarm', () => {
  if (countQueued) return;
  countQueued = true;
  requestAnimationFrame(() => { countQueued = false; countUnacked(); });
});

window.addEventListener('hashchange', route);
route();
