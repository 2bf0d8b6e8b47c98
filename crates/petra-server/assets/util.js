// Small helpers shared by the views: DOM building (text only — data never goes through
// innerHTML), formatting, and the API's name glob.

/** `h('td', {class: 'x', onclick: f}, 'text', child)`: an element with attributes, listeners
 *  (`on…`), properties (`.prop`) and children (strings become text nodes; null is skipped). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k.startsWith('.')) el[k.slice(1)] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** The API's `match` glob: `*` any run of characters, `?` one, everything else itself. */
export function glob(pattern, name) {
  if (!pattern) return true;
  let p = 0, n = 0, star = -1, mark = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) { p++; n++; }
    else if (p < pattern.length && pattern[p] === '*') { star = p++; mark = n; }
    else if (star >= 0) { p = star + 1; n = ++mark; }
    else return false;
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

const num = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });

/** A signal or alarm value for people. */
export function fmtValue(v) {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return num.format(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  return String(v);
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** An RFC 3339 time (or ms) as local `YYYY-MM-DD HH:MM:SS.mmm`; the date only when not today. */
export function fmtTime(t, { ms = true, date = 'auto' } = {}) {
  if (t === null || t === undefined) return '–';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  const now = new Date();
  const showDate = date === true || (date === 'auto' && d.toDateString() !== now.toDateString());
  let s = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  if (ms) s += `.${pad(d.getMilliseconds(), 3)}`;
  if (showDate) s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${s}`;
  return s;
}

/** A local `datetime-local` input value for ms since the epoch. */
export function toLocalInput(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const sig3 = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });

/** Seconds as `850 µs`, `12.3 ms`, `1.25 s` (three significant digits). */
export function fmtSeconds(s) {
  if (s === null || s === undefined || !Number.isFinite(s)) return '–';
  if (s < 1e-3) return `${sig3.format(s * 1e6)} µs`;
  if (s < 1) return `${sig3.format(s * 1e3)} ms`;
  return `${sig3.format(s)} s`;
}

/** Calls `f` at most once per animation frame, with the latest arguments. */
export function perFrame(f) {
  let queued = false, args = [];
  return (...a) => {
    args = a;
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; f(...args); });
  };
}

/** Calls `f` once, `ms` after the last call. */
export function debounce(f, ms) {
  let t = 0;
  return (...a) => { clearTimeout(t); t = setTimeout(() => f(...a), ms); };
}

/** A modal dialog (native `<dialog>`: focus stays inside, Esc cancels). `onConfirm` runs on
 *  submit; it closes the dialog when it resolves, and shows its error's message inside the
 *  dialog (the server's text) when it throws. */
export function modal({ title, content, confirm, onConfirm }) {
  const id = `dlg-${Math.random().toString(36).slice(2)}`;
  const error = h('p', { class: 'error', role: 'alert' });
  const ok = h('button', { type: 'submit', class: 'primary' }, confirm);
  const dlg = h('dialog', { 'aria-labelledby': id });
  const form = h('form', { class: 'dialog-body' },
    h('h2', { id }, title),
    content,
    error,
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => dlg.close() }, 'Cancel'),
      ok));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    ok.disabled = true;
    try {
      await onConfirm();
      dlg.close();
    } catch (x) {
      error.textContent = x.message;
    } finally {
      ok.disabled = false;
    }
  });
  dlg.append(form);
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
  form.querySelector('input, select, textarea')?.focus();
  return dlg;
}
