// The design note's settings screen on two devices side by side.  Plain DOM
// over the Zustand store (createRoastrStore); the same store drives a React
// app through useRoastrState.
//   ?gateway=<url>&token=<jwt>   a real gateway (default: the stand-in of serve.js)
import { io } from 'socket.io-client';
import { createStateClient, gatewayTransport, localStorageAdapter } from '../src/index.js';
import { createRoastrStore } from '../src/zustand.js';

const params = new URLSearchParams(location.search);
const gatewayUrl = params.get('gateway') ?? location.origin;
const token = params.get('token') ?? '00000000-0000-4000-8000-0000000000de';   // the stand-in takes a user id as token
const mock = !params.has('gateway');

// A transport the page can take offline (as if the network went away).
function switchable(inner) {
  let h = null;
  let offline = false;
  let last = { online: false, writable: false, via: null };
  const t = {
    settleDelayMs: inner.settleDelayMs,
    start(handlers) {
      h = handlers;
      inner.start({
        ...handlers,
        onUpdate: (m) => !offline && handlers.onUpdate(m),
        onSync: (m) => !offline && handlers.onSync(m),
        onStatus: (s) => {
          last = s;
          if (!offline) handlers.onStatus(s);
        },
      });
    },
    patch: (req) => (offline ? Promise.reject(Object.assign(new Error('offline'), { code: 'NETWORK' })) : inner.patch(req)),
    sync: (since) => (offline ? Promise.reject(Object.assign(new Error('offline'), { code: 'NETWORK' })) : inner.sync(since)),
    close: () => inner.close(),
    setOffline(v) {
      offline = v;
      h.onStatus(v ? { online: false, writable: false, via: null } : last);
    },
  };
  return t;
}

const el = (tag, attrs = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k);
  return e;
};

const LABELS = {
  'roasting.enabled': 'Roasting activado', 'roasting.roast_level': 'Nivel de roast', 'roasting.shield_level': 'Nivel de escudo',
  'persona.identity': 'Lo que me define', 'persona.intolerance': 'Lo que no tolero', 'persona.tolerance': 'Lo que me da igual', 'auth.name': 'Nombre',
};
const show = (v) => (v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));

function device(name) {
  const transport = switchable(gatewayTransport({ url: gatewayUrl, token, io, fallbackAfterMs: 2000, pollMs: 5000 }));
  const client = createStateClient({ transport, storage: localStorageAdapter({ prefix: `${name}:` }) });
  const store = createRoastrStore(client);
  client.installBeforeUnload(window);

  const badge = el('span', { class: 'badge' });
  const plan = el('span', { class: 'plan' });
  const offline = el('input', {
    type: 'checkbox',
    onchange: () => {
      transport.setOffline(offline.checked);
      if (!offline.checked) client.sync();   // what was missed while "offline"
    },
  });
  const enabled = el('input', { type: 'checkbox', onchange: () => store.getState().toggleRoasting(enabled.checked) });
  const level = el('select', { onchange: () => store.getState().patch({ 'roasting.roast_level': Number(level.value) }) },
    ...[1, 2, 3, 4, 5].map((n) => el('option', { value: String(n) }, String(n))));
  const shield = el('select', { onchange: () => store.getState().patch({ 'roasting.shield_level': shield.value }) },
    ...['tolerante', 'balanceado', 'estricto'].map((s) => el('option', { value: s }, s)));
  const persona = {};
  const personaBox = el('div');
  for (const f of ['identity', 'intolerance', 'tolerance']) {
    const ta = el('textarea', { 'data-field': f, maxlength: '4000' });
    const note = el('span');
    const save = el('button', { onclick: () => store.getState().patch({ [`persona.${f}`]: ta.value === '' ? null : ta.value }).catch(() => {}) }, 'Guardar');
    ta.addEventListener('input', () => (ta.dataset.dirty = '1'));
    persona[f] = { ta, note, save };
    personaBox.append(el('div', { class: 'persona' }, el('label', {}, LABELS[`persona.${f}`]), ta, el('div', { class: 'actions' }, note, save)));
  }
  const usageText = el('div');
  const barFill = el('div');
  const status = el('div', { class: 'status' });
  const dialog = el('div', { class: 'conflict', hidden: '' });

  const panel = el('section', { class: 'device' },
    el('header', {}, el('h2', {}, `Dispositivo ${name}`), plan, badge,
      el('label', { class: 'switch' }, offline, 'sin conexión')),
    el('div', { class: 'row' }, el('label', {}, LABELS['roasting.enabled']), enabled),
    el('div', { class: 'row' }, el('label', {}, LABELS['roasting.roast_level']), level),
    el('div', { class: 'row' }, el('label', {}, LABELS['roasting.shield_level']), shield),
    personaBox,
    el('div', { class: 'usage' }, usageText, el('div', { class: 'bar' }, barFill)),
    status,
    dialog);

  let shownConflict = null;
  function renderConflict(s) {
    const c = s.conflicts[0];
    if (!c) {
      dialog.hidden = true;
      shownConflict = null;
      return;
    }
    if (shownConflict && shownConflict.id === c.id && shownConflict.server === c.server) return;
    shownConflict = c;
    const merged = el('input', { value: typeof c.mine === 'string' ? `${c.mine}${c.server ? ` / ${c.server}` : ''}` : show(c.mine) });
    const parse = (v) => (c.field === 'roasting.roast_level' ? Number(v) : c.field === 'roasting.enabled' ? v === 'true' : v);
    dialog.replaceChildren(
      el('h3', {}, `Conflicto: ${LABELS[c.field] ?? c.field}`),
      el('div', { class: 'vals' },
        el('span', {}, 'Este dispositivo'), el('code', {}, show(c.mine)),
        el('span', {}, 'Otro dispositivo'), el('code', {}, c.serverKnown ? show(c.server) : '(cargando…)')),
      el('div', {},
        el('button', { class: 'primary', onclick: () => store.getState().resolve(c, 'mine').catch(() => {}) }, 'Mantener el mío'),
        ' ',
        el('button', { onclick: () => store.getState().resolve(c, 'server') }, 'Usar el del servidor')),
      el('div', {}, merged,
        el('button', { onclick: () => store.getState().resolve(c, { value: parse(merged.value) }).catch(() => {}) }, 'Combinar')));
    dialog.hidden = false;
  }

  function render(s) {
    const st = s.status;
    badge.textContent = st.state === 'online' ? 'en línea' : st.state === 'syncing' ? 'sincronizando' : 'sin conexión';
    badge.className = `badge ${st.state}`;
    plan.textContent = s.subscription.plan ?? '…';
    enabled.checked = !!s.roasting.enabled;
    if (s.roasting.roast_level !== null) level.value = String(s.roasting.roast_level);
    if (s.roasting.shield_level !== null) shield.value = s.roasting.shield_level;
    const pro = s.subscription.plan === 'pro' || s.subscription.plan === 'plus';
    for (const [f, { ta, note, save }] of Object.entries(persona)) {
      const v = s.persona[f] ?? '';
      if (document.activeElement !== ta && !ta.dataset.dirty) ta.value = v;
      if (ta.dataset.dirty && ta.value === v) delete ta.dataset.dirty;
      const unsaved = st.unsavedPersona.includes(`persona.${f}`);
      const locked = f === 'tolerance' && !pro;
      ta.disabled = locked;
      save.disabled = locked;
      note.textContent = locked ? 'Solo en Pro y Plus' : unsaved ? 'sin guardar (solo en memoria)' : '';
      note.className = unsaved ? 'warn' : '';
    }
    const u = s.usage;
    const limit = u.monthly_roasts_limit;
    usageText.textContent = limit === null && u.monthly_roasts_used !== null
      ? `${u.monthly_roasts_used} roasts este mes (ilimitado)`
      : `${u.monthly_roasts_used ?? 0} / ${limit ?? '…'} roasts · quedan ${u.remaining_roasts ?? '…'} · se renueva ${u.reset_date ? u.reset_date.slice(0, 10) : '…'}`;
    barFill.style.width = limit ? `${Math.min(100, (100 * (u.monthly_roasts_used ?? 0)) / limit)}%` : '0%';
    status.replaceChildren(
      `versión ${s._meta.version} · pendientes ${st.pending} · vía ${st.via ?? '—'} · última sincronización ${st.lastSyncedAt ? new Date(st.lastSyncedAt).toLocaleTimeString() : '—'}`,
      ...(st.error ? [el('span', { class: 'warn' }, ` · ${st.error.code}`)] : []));
    renderConflict(s);
  }
  store.subscribe(render);
  render(store.getState());
  client.on('error', (e) => {
    status.append(el('div', { class: 'warn' }, `rechazado (${e.code}${e.field ? `, ${e.field}` : ''}): ${e.message}`));
  });
  return { panel, client, store };
}

const devices = [device('A'), device('B')];
document.getElementById('devices').append(...devices.map((d) => d.panel));
window.roastrDevices = devices;   // for the console and the browser test

if (mock) {
  const call = (path) => fetch(path, { method: 'POST', headers: { Authorization: `Bearer ${token}` } }).then((r) => r.json());
  document.getElementById('server').append(
    el('strong', {}, 'Servidor (stand-in): '),
    el('button', { onclick: () => call('/mock/consume?n=10') }, 'consumir 10 roasts'),
    el('button', { onclick: () => call('/mock/plan?plan=pro') }, 'plan pro (webhook)'),
    el('button', { onclick: () => call('/mock/plan?plan=free') }, 'plan free'),
    el('button', { onclick: () => call(`/mock/patch?changes=${encodeURIComponent(JSON.stringify({ 'roasting.roast_level': 1 }))}`) }, 'otro dispositivo: nivel 1'));
} else {
  document.getElementById('server').textContent = `Gateway: ${gatewayUrl}`;
}

// ?scenario=conflict plays a conflict by itself (for screenshots and demos):
// A goes offline and sets level 5, B sets level 2, A comes back.
if (params.get('scenario') === 'conflict') {
  const [A, B] = devices;
  const wait = (cond) => new Promise((resolve) => {
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      }
    }, 50);
  });
  await wait(() => A.client.status.ready && B.client.status.ready && A.client.status.state === 'online');
  const off = A.panel.querySelector('.switch input');
  off.checked = true;
  off.dispatchEvent(new Event('change'));
  const other = A.client.state.roasting.roast_level === 5 ? 4 : 5;
  A.client.patch({ 'roasting.roast_level': other, 'persona.identity': 'Ingeniera, fan del café' });
  await B.client.patch({ 'roasting.roast_level': 2 });
  off.checked = false;
  off.dispatchEvent(new Event('change'));
}

// ...&choice=mine|server|merge then answers the dialog.
if (params.get('scenario') === 'conflict' && params.get('choice')) {
  const [A] = devices;
  const t0 = Date.now();
  while (A.client.conflicts.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
  const buttons = [...A.panel.querySelectorAll('.conflict button')];
  const label = { mine: 'Mantener el mío', server: 'Usar el del servidor', merge: 'Combinar' }[params.get('choice')];
  buttons.find((b) => b.textContent === label)?.click();
}
