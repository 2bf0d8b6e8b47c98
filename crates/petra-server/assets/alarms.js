// Alarms: the alarm console (ISA-18.2 states, highest priority first, newest first within a
// priority), acknowledge / shelve / unshelve, the KPIs and the journal; live from the stream.

import { api, live } from './api.js';
import { h, fmtValue, fmtTime, modal, debounce } from './util.js';

const RANK = { critical: 4, high: 3, medium: 2, low: 1 };
const NEEDS_ACK = new Set(['active_unacked', 'rtn_unacked']);
const ALL_KEY = 'petra.alarms.all';

export function mount(root) {
  let showAll = sessionStorage.getItem(ALL_KEY) === '1';
  const kpis = h('p', { class: 'kpis', 'aria-live': 'polite' }, 'KPIs: loading…');
  const note = h('p', { class: 'note', role: 'status' });
  const body = h('tbody');
  const empty = h('p', { class: 'muted empty' });
  const journalBody = h('tbody');
  const all = h('input', { type: 'checkbox', id: 'alarms-all', checked: showAll });
  all.addEventListener('change', () => {
    showAll = all.checked;
    sessionStorage.setItem(ALL_KEY, showAll ? '1' : '0');
    render();
  });

  root.append(
    h('div', { class: 'view-head' },
      h('h1', { tabindex: '-1' }, 'Alarms'),
      h('label', { class: 'check' }, all, 'Show alarms in normal state too')),
    kpis,
    note,
    h('div', { class: 'scroll' },
      h('table', { class: 'grid alarms' },
        h('caption', { class: 'sr-only' }, 'Active alarms'),
        h('thead', {}, h('tr', {},
          ...['Priority', 'Alarm', 'State', 'Message', 'Value', 'Active since', 'Acknowledged',
            'Cleared', 'Shelved'].map((t) => h('th', { scope: 'col' }, t)),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')))),
        body)),
    empty,
    h('h2', {}, 'Journal'),
    h('p', { class: 'muted' }, 'The newest 200 transitions and notification attempts, newest first.'),
    h('div', { class: 'scroll' },
      h('table', { class: 'grid journal' },
        h('caption', { class: 'sr-only' }, 'Alarm journal'),
        h('thead', {}, h('tr', {},
          ...['Time', 'Kind', 'Alarm', 'Change', 'Cause / result', 'User', 'Details']
            .map((t) => h('th', { scope: 'col' }, t)))),
        journalBody)));

  function say(text, kind = 'ok') {
    note.className = `note ${kind}`;
    note.textContent = text;
  }

  function sorted() {
    const list = [...live.alarms.values()].filter((a) => showAll || a.state !== 'normal' || a.shelved_until);
    const time = (a) => a.active_since || a.changed_at || '';
    return list.sort((a, b) => (RANK[b.priority] || 0) - (RANK[a.priority] || 0)
      || time(b).localeCompare(time(a)) || a.name.localeCompare(b.name));
  }

  function render() {
    const list = sorted();
    // Keep the focused button across a re-render (keyboard users acting on a row).
    const focused = document.activeElement?.dataset?.key;
    body.replaceChildren(...list.map(row));
    if (focused) body.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
    empty.textContent = list.length ? '' : (live.alarms.size
      ? 'No active alarms.'
      : 'No alarms are configured (or none arrived yet).');
  }

  function row(a) {
    const unacked = NEEDS_ACK.has(a.state);
    const shelved = a.shelved_until
      ? h('span', { title: a.shelve_reason || '' },
        `until ${fmtTime(a.shelved_until, { ms: false })} by ${a.shelved_by || '?'}: ${a.shelve_reason || ''}`)
      : (a.suppressed ? 'suppressed' : a.out_of_service ? 'out of service' : '');
    return h('tr', { 'data-alarm': a.name, class: `p-${a.priority}${unacked ? ' unacked' : ''}` },
      h('td', {}, h('span', { class: `badge prio p-${a.priority}` }, a.priority)),
      h('th', { scope: 'row', class: 'name' }, a.name),
      h('td', { class: 'state' }, h('span', { class: `state s-${a.state}` }, a.state)),
      h('td', { class: 'message' }, a.message),
      h('td', { class: 'num' }, fmtValue(a.value)),
      h('td', { class: 'ts' }, fmtTime(a.active_since, { ms: false })),
      h('td', { class: 'ts' }, a.acked_at ? `${fmtTime(a.acked_at, { ms: false })} ${a.acked_by || ''}` : '–'),
      h('td', { class: 'ts' }, fmtTime(a.cleared_at, { ms: false })),
      h('td', {}, shelved || '–'),
      h('td', { class: 'actions' },
        h('button', {
          type: 'button', class: unacked ? 'primary small' : 'small', disabled: !unacked,
          'data-key': `ack:${a.name}`, 'aria-label': `Acknowledge ${a.name}`,
          onclick: () => act(a.name, 'ack', undefined, `${a.name} acknowledged.`).catch(() => {}),
        }, 'Ack'),
        a.shelved_until
          ? h('button', {
            type: 'button', class: 'small', 'data-key': `unshelve:${a.name}`,
            'aria-label': `Unshelve ${a.name}`,
            onclick: () => act(a.name, 'unshelve', undefined, `${a.name} is back in service.`)
              .catch(() => {}),
          }, 'Unshelve')
          : h('button', {
            type: 'button', class: 'small', 'data-key': `shelve:${a.name}`,
            'aria-label': `Shelve ${a.name}`, onclick: () => shelveDialog(a),
          }, 'Shelve…'),
        // A latching alarm acknowledged before its return waits for a reset (the server says
        // why when it refuses: the condition is still active).
        a.latch && a.state === 'active_acked'
          ? h('button', {
            type: 'button', class: 'small', 'data-key': `reset:${a.name}`,
            'aria-label': `Reset ${a.name}`,
            onclick: () => act(a.name, 'reset', undefined, `${a.name} reset.`).catch(() => {}),
          }, 'Reset')
          : null));
  }

  async function act(name, action, body, done) {
    try {
      const after = await api('POST', `api/v1/alarms/${encodeURIComponent(name)}/${action}`, body);
      live.alarms.set(after.name, after);
      render();
      say(done);
      refresh();
    } catch (e) {
      say(e.message, 'error');
      throw e;
    }
  }

  function shelveDialog(a) {
    const duration = h('select', { id: 'shelve-duration' },
      ...['30m', '1h', '2h', '8h', '24h', '7d'].map((d) => h('option', { value: d, selected: d === '1h' }, d)),
      h('option', { value: 'custom' }, 'other…'));
    const custom = h('input', {
      id: 'shelve-custom', placeholder: 'e.g. 90m, 1.5h, 3d', hidden: true, autocomplete: 'off',
      'aria-label': 'Other duration',
    });
    duration.addEventListener('change', () => { custom.hidden = duration.value !== 'custom'; });
    const reason = h('input', {
      id: 'shelve-reason', required: true, maxlength: '500', autocomplete: 'off',
      placeholder: 'why, for the next shift',
    });
    modal({
      title: `Shelve ${a.name}`,
      content: [
        h('p', {}, `${a.message} — shelved, it is hidden from the console and notifies nobody until the time is up.`),
        h('label', { for: 'shelve-duration' }, 'For'),
        h('div', { class: 'row' }, duration, custom),
        h('label', { for: 'shelve-reason' }, 'Reason'),
        reason,
      ],
      confirm: 'Shelve',
      onConfirm: async () => {
        const d = duration.value === 'custom' ? custom.value.trim() : duration.value;
        await act(a.name, 'shelve', { duration: d, reason: reason.value },
          `${a.name} shelved for ${d}.`);
      },
    });
  }

  async function loadKpis() {
    try {
      const k = await api('GET', 'api/v1/alarms/kpis');
      const a = k.active || {};
      const names = (l) => (l && l.length ? l.join(', ') : 'none');
      kpis.replaceChildren(
        h('span', {}, h('b', {}, 'Activations (10 min): '), String(k.rate_10min)),
        h('span', { class: k.flood ? 'flood' : '' }, h('b', {}, 'Flood: '), k.flood ? 'YES' : 'no'),
        h('span', {}, h('b', {}, 'Active: '),
          ['critical', 'high', 'medium', 'low'].map((p) => `${p} ${a[p] ?? 0}`).join(' · ')),
        h('span', {}, h('b', {}, 'Standing: '), names(k.standing)),
        h('span', {}, h('b', {}, 'Chattering: '), names(k.chattering)),
        h('span', {}, h('b', {}, 'Dropped transitions: '), String(k.dropped_transitions)));
    } catch (e) {
      kpis.textContent = `KPIs: ${e.message}`;
    }
  }

  async function loadJournal() {
    let entries;
    try {
      entries = await api('GET', 'api/v1/alarms/journal?limit=200');
    } catch (e) {
      journalBody.replaceChildren(h('tr', {}, h('td', { colspan: '7', class: 'error' }, e.message)));
      return;
    }
    // Newest first by time (notification attempts are journaled when they finish).
    entries.sort((a, b) => (b.ts || '').localeCompare(a.ts || ''));
    journalBody.replaceChildren(...entries.map((e) => {
      const notification = e.kind === 'notification';
      return h('tr', { class: `j-${e.kind}` },
        h('td', { class: 'ts' }, fmtTime(e.ts)),
        h('td', {}, e.kind),
        h('td', {}, notification ? (e.alarms || []).join(', ') : e.alarm),
        h('td', {}, notification
          ? `${e.channel} to ${e.contact} (attempt ${e.attempt})`
          : `${e.from} → ${e.to}`),
        h('td', {}, notification ? e.result : e.cause),
        h('td', {}, e.user || ''),
        h('td', {}, notification ? (e.error || e.sid || '') : [
          e.value !== undefined && e.value !== null ? `value ${fmtValue(e.value)}` : '',
          e.reason ? `reason: ${e.reason}` : '',
        ].filter(Boolean).join('; ')));
    }));
  }

  const refresh = debounce(() => { loadKpis(); loadJournal(); }, 300);
  const rerender = debounce(render, 50);
  const onAlarm = () => { rerender(); refresh(); };
  live.changes.addEventListener('alarm', onAlarm);

  (async () => {
    try {
      // The list replaces what the stream knew: a reload may have removed alarms.
      const list = await api('GET', 'api/v1/alarms');
      live.alarms.clear();
      for (const a of list) live.alarms.set(a.name, a);
    } catch (e) {
      say(e.message, 'error');
    }
    render();
  })();
  loadKpis();
  loadJournal();
  return () => live.changes.removeEventListener('alarm', onAlarm);
}
