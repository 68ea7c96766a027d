// natpilot status page: one server-sent-event stream brings every event and a fresh status after
// each change; nothing polls. Data goes into the page as text, never as HTML.
'use strict';

let status = null;
let clockSkew = 0;  // server time minus browser time, seconds
let adminToken = '';

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el('td', c));
  return tr;
}

function time(t) {
  return t ? new Date(t * 1000).toLocaleString() : '–';
}

function expiresIn(t) {
  if (!t) return '';
  const left = Math.round(t - (Date.now() / 1000 + clockSkew));
  if (left <= 0) return 'expired';
  const h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
  return (h ? h + 'h ' : '') + (h || m ? m + 'm ' : '') + s + 's';
}

function render(s) {
  status = s;
  clockSkew = s.now - Date.now() / 1000;
  const g = s.gateway;
  document.getElementById('gw-status').textContent = g.status;
  document.getElementById('gw-protocol').textContent = g.protocol;
  document.getElementById('gw-external').textContent = g.external_address || 'unknown';
  document.getElementById('gw-address').textContent = g.address || '–';
  document.getElementById('gw-reboot').textContent = time(g.last_reboot_seen);
  document.getElementById('gw-detail').textContent = g.detail || '';
  const warning = document.getElementById('warning');
  warning.hidden = !g.nat_warning;
  warning.textContent = g.nat_warning || '';
  const probes = document.getElementById('probes');
  probes.replaceChildren(...g.protocols.map(p => row([
    p.protocol, p.finished ? (p.answered ? 'yes' : 'no') : 'probing', p.took_ms + ' ms',
    p.external_address || '–', el('td', p.detail, 'detail')])));

  const devices = document.getElementById('device-rows');
  devices.replaceChildren(...s.devices.map(d => {
    const remove = el('button', 'Remove');
    remove.addEventListener('click', () => removeDevice(d.name));
    const actions = el('td');
    actions.appendChild(remove);
    const tr = row([d.name, d.kind, d.address, d.sip + ' ' + d.sip_transports.join(','), d.rtp,
      d.mappings_active + '/' + d.mappings_total, d.suspended ? 'SUSPENDED' : (d.mac || '–'), actions]);
    tr.dataset.device = d.name;
    if (d.suspended) tr.title = d.suspended;
    return tr;
  }));

  const mappings = document.getElementById('mapping-rows');
  mappings.replaceChildren(...s.mappings.map(m => {
    const state = el('td');
    state.appendChild(el('span', m.state, 'badge state-' + m.state));
    const expires = el('td', expiresIn(m.expires_at));
    expires.dataset.expires = m.expires_at || '';
    const ext = (m.external_address ? m.external_address + ':' : '') + m.external_port;
    const tr = row([m.device, m.purpose, m.transport, m.internal, ext, state,
      m.protocol === 'none' ? '' : m.protocol, expires, el('td', m.detail, 'detail')]);
    tr.dataset.mapping = m.device + ' ' + m.transport + ' ' + m.internal.split(':')[1];
    tr.dataset.state = m.state;
    return tr;
  }));

  const links = document.getElementById('rule-links');
  links.replaceChildren(...s.rules.map(r => {
    const li = el('li');
    const a = el('a', r.format);
    a.href = r.href;
    li.appendChild(a);
    return li;
  }));
}

function addEvent(e) {
  const list = document.getElementById('event-list');
  const li = el('li');
  li.appendChild(el('span', time(e.at) + '  ', 'muted'));
  li.appendChild(el('span', e.kind, 'kind'));
  li.appendChild(el('span', (e.device ? '  ' + e.device : '') + '  ' + e.message));
  li.appendChild(el('span', '  (by ' + e.caller + ')', 'muted'));
  li.dataset.kind = e.kind;
  list.insertBefore(li, list.firstChild);
  while (list.children.length > 200) list.removeChild(list.lastChild);
}

// Countdowns move with the clock; the data only changes when the stream says so.
function tick() {
  for (const td of document.querySelectorAll('td[data-expires]')) {
    const t = Number(td.dataset.expires);
    if (t) td.textContent = expiresIn(t);
  }
}

async function call(method, path, body) {
  const out = document.getElementById('action-result');
  const headers = { 'Authorization': 'Bearer ' + adminToken };
  if (body) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined,
                                  credentials: 'omit' });
  const answer = await res.json().catch(() => ({}));
  out.textContent = res.ok ? (method === 'POST' ? 'added ' + answer.name + '; its token (shown once): ' + answer.token
                                                : 'removed ' + answer.removed)
                           : 'refused: ' + (answer.error || res.status);
  return res.ok;
}

function removeDevice(name) {
  if (confirm('Remove ' + name + ' and delete its forwards from the gateway?')) {
    call('DELETE', '/api/devices/' + encodeURIComponent(name));
  }
}

function start() {
  document.getElementById('token').addEventListener('input', e => { adminToken = e.target.value.trim(); });
  document.getElementById('add-form').addEventListener('submit', e => {
    e.preventDefault();
    const f = new FormData(e.target);
    const body = {};
    for (const [k, v] of f.entries()) if (v) body[k] = v;
    call('POST', '/api/devices', body).then(ok => { if (ok) e.target.reset(); });
  });
  const live = document.getElementById('live');
  const stream = new EventSource('/api/stream');
  stream.addEventListener('status', e => render(JSON.parse(e.data)));
  stream.addEventListener('natpilot', e => addEvent(JSON.parse(e.data)));
  stream.onopen = () => { live.textContent = 'live'; live.className = 'badge on'; };
  stream.onerror = () => { live.textContent = 'reconnecting…'; live.className = 'badge off'; };
  setInterval(tick, 1000);
}

document.addEventListener('DOMContentLoaded', start);
