// End to end in a real browser: the example page (examples/index.html,
// one device per page) in headless Chromium, two browser contexts as two
// devices of one user, against the REAL gateway (node gateway/server.js)
// and the extension in PostgreSQL.  Run by test/extra/client_browser.sh,
// which starts the gateway and the page's file server and sets:
//
//   PAGE_URL     where the page's files are served (http://127.0.0.1:P)
//   GW_URL       the gateway (its CORS_ORIGIN admits PAGE_URL)
//   JWT_SECRET   the gateway's HS256 secret (tokens are signed here)
//   USER_ID      the user (ensure_user done)
//   PG*          the test database, as a superuser (the service), for psql
//   OUT_DIR      where the screenshots go
//   CHROMIUM     the browser (default /usr/bin/chromium)
//   ROASTR_BROWSER_BREAK  (for showing that the test can fail) a rule of
//                the client to break in the page: no-update | no-storage
//
// Prints one line per check and ends with "N passed, N failed"; exits 1 on
// any failure.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { chromium } from 'playwright-core';
import { signToken } from '../../examples/jwt.js';

const { PAGE_URL, GW_URL, JWT_SECRET, USER_ID: U, OUT_DIR } = process.env;
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const BREAK = process.env.ROASTR_BROWSER_BREAK ?? '';
for (const [k, v] of Object.entries({ PAGE_URL, GW_URL, JWT_SECRET, USER_ID: U, OUT_DIR })) {
  if (!v) {
    console.error(`e2e: ${k} is not set (run test/extra/client_browser.sh)`);
    process.exit(2);
  }
}
const started = Date.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let passed = 0;
let failed = 0;
const notes = [];
function ok(cond, msg) {
  if (!cond) throw new Error(msg);
}
let stopping = false;
async function check(name, fn) {
  if (stopping) return;
  const t = Date.now();
  try {
    const extra = await fn();
    passed++;
    console.log(`ok - ${name}${extra ? `: ${extra}` : ''} (${Date.now() - t} ms)`);
  } catch (err) {
    failed++;
    console.log(`not ok - ${name}: ${String(err?.message ?? err).split('\n').slice(0, 6).join('\n    ')}`);
  }
}

// ------------------------------------------------------------------ SQL
// psql as the cluster's superuser (what the service does); JSON back.
function sql(text) {
  return execFileSync('psql', ['-X', '-At', '-q', '-v', 'ON_ERROR_STOP=1', '-c', text], { encoding: 'utf8' }).trim();
}
const full = () => JSON.parse(sql(`SELECT roastr_state.state_full('${U}')`));
const version = () => full()._meta.version;
const sync = (since) => JSON.parse(sql(`SELECT roastr_state.state_sync('${U}', ${Number(since)})`));

// -------------------------------------------------------------- browser
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
  // the offline reload serves the page's files from the test (as an
  // installed app's cache would); Chromium then counts the page as public
  // and would refuse its requests to the gateway on loopback
  '--disable-features=LocalNetworkAccessChecks'];
const token = signToken({ secret: JWT_SECRET, sub: U, ttlSeconds: 3600 });
const pageUrl = (name, extra = '') => `${PAGE_URL}/examples/?${new URLSearchParams({ gateway: GW_URL, token, devices: name })}${extra}`;

let browser = null;
const devices = {};

async function openDevice(name) {
  const context = await browser.newContext({ viewport: { width: 560, height: 820 } });
  if (BREAK) await breakClient(context);
  const page = await context.newPage();
  const d = { name, context, page, log: [], dialogs: [] };
  page.on('console', (m) => d.log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => d.log.push(`pageerror: ${e.message}`));
  page.on('dialog', (dlg) => {
    d.dialogs.push(dlg.type());
    dlg.accept().catch(() => {});
  });
  await page.goto(pageUrl(name));
  await until(d, (c) => c.status.ready && c.status.via === 'socket', 'ready over the socket');
  devices[name] = d;
  return d;
}

// A deliberately broken client, to show that the test can fail: the page
// gets a modified src/client.js.
async function breakClient(context) {
  const file = path.join(path.dirname(new URL(import.meta.url).pathname), '../../src/client.js');
  let src = fs.readFileSync(file, 'utf8');
  const edits = {
    // state_update is dropped instead of merged (the device waits for a sync)
    'no-update': ['    applyServer(flatten(data).map(([field, value]) => ({ field, value, version })), version, null);\n  }', '  }'],
    // nothing is written to storage: a reload loses the queue
    'no-storage': ['          await storage.set(key, JSON.stringify(snapshot()));', '          void snapshot;'],
  }[BREAK];
  if (!edits || !src.includes(edits[0])) throw new Error(`ROASTR_BROWSER_BREAK=${BREAK}: unknown, or src/client.js changed`);
  src = src.replace(edits[0], edits[1]);
  await context.route(/\/src\/client\.js$/, (route) => route.fulfill({ contentType: 'text/javascript', body: src }));
}

// What the device's client holds (first device of the page).
const view = (d) => d.page.evaluate(() => {
  const { client } = window.roastrDevices[0];
  return { state: client.state, status: client.status, conflicts: client.conflicts, pending: client.pending };
});

// Wait until fn(view) is true (polled in Node, every 25 ms).
async function until(d, fn, what, timeoutMs = 15000) {
  const t0 = Date.now();
  let last = null;
  for (;;) {
    try {
      last = await d.page.evaluate(() => {
        const c = window.roastrDevices?.[0]?.client;
        return c ? { state: c.state, status: c.status, conflicts: c.conflicts, pending: c.pending } : null;
      });
      if (last && fn(last)) return last;
    } catch (err) {
      if (!/context was destroyed|navigation/i.test(err.message)) throw err;
    }
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`device ${d.name}: not ${what} after ${timeoutMs} ms; status ${JSON.stringify(last?.status)}`
        + ` roasting ${JSON.stringify(last?.state?.roasting)} conflicts ${JSON.stringify(last?.conflicts)}`);
    }
    await sleep(25);
  }
}

const storage = (d) => d.page.evaluate(() => Object.entries(localStorage));
const row = (d, label) => d.page.locator('.device .row', { hasText: label });
const setLevel = (d, n) => row(d, 'Nivel de roast').locator('select').selectOption(String(n));
const setShield = (d, s) => row(d, 'Nivel de escudo').locator('select').selectOption(s);
const persona = (d, f) => d.page.locator('.persona', { has: d.page.locator(`textarea[data-field="${f}"]`) });

// ---------------------------------------------------------------- checks
async function main() {
  browser = await chromium.launch({
    executablePath: CHROMIUM, args: ARGS, timeout: 30000, handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false,
  });
  const A = await openDevice('A');
  const B = await openDevice('B');
  const markerSaved = `Ingeniera, fan del café ${randomUUID().slice(0, 8)}`;
  const markerUnsaved = `no tolero el spam ${randomUUID().slice(0, 8)}`;

  await check('both devices load the user\'s state from the gateway over the socket', async () => {
    const s = full();
    for (const d of [A, B]) {
      const v = await view(d);
      ok(v.state._meta.version === s._meta.version, `${d.name}: version ${v.state._meta.version}, server ${s._meta.version}`);
      ok(isDeepStrictEqual(v.state.roasting, s.roasting), `${d.name}: roasting differs`);
      ok(v.state.auth.email === s.auth.email, `${d.name}: auth.email`);
    }
    return `version ${s._meta.version}, plan ${s.subscription.plan}`;
  });

  await check('a toggle of roasting.enabled on one device shows on the other in under 1 s', async () => {
    // the click time in the writing page, the time the other page's store
    // changed (one machine, one clock)
    for (const d of [A, B]) {
      await d.page.evaluate(() => {
        const { store, panel } = window.roastrDevices[0];
        window.__seen = [];
        let last = store.getState().roasting.enabled;
        store.subscribe((s) => {
          if (s.roasting.enabled !== last) {
            last = s.roasting.enabled;
            window.__seen.push({ value: last, at: Date.now() });
          }
        });
        window.__clicks = [];
        panel.querySelector('.row input[type=checkbox]').addEventListener('click', () => window.__clicks.push(Date.now()), true);
      });
    }
    const latencies = [];
    for (let i = 0; i < 6; i++) {
      const [w, r] = i % 2 === 0 ? [A, B] : [B, A];
      const before = (await view(r)).state.roasting.enabled;
      await r.page.evaluate(() => { window.__seen = []; });
      await row(w, 'Roasting activado').locator('input').click();
      await until(r, (v) => v.state.roasting.enabled === !before, `showing roasting.enabled = ${!before}`, 5000);
      const clickAt = await w.page.evaluate(() => window.__clicks.at(-1));
      const seen = await r.page.evaluate(() => window.__seen.find((x) => x !== null));
      latencies.push({ from: w.name, ms: seen.at - clickAt });
      await until(w, (v) => v.status.pending === 0 && v.status.state === 'online', 'settled');
    }
    const ms = latencies.map((l) => l.ms).sort((a, b) => a - b);
    const summary = `${latencies.map((l) => `${l.from}→${l.from === 'A' ? 'B' : 'A'} ${l.ms} ms`).join(', ')}; median ${ms[Math.floor(ms.length / 2)]} ms, max ${ms.at(-1)} ms`;
    notes.push(`toggle latency: ${summary}`);
    ok(ms.at(-1) < 1000, `slowest ${ms.at(-1)} ms: ${summary}`);
    const s = full();
    ok((await view(A)).state.roasting.enabled === s.roasting.enabled, 'A differs from state_full');
    return summary;
  });

  await check('persona text saved on A reaches B (state_sync) and is in neither device\'s storage', async () => {
    await persona(A, 'identity').locator('textarea').fill(markerSaved);
    await persona(A, 'identity').locator('button').click();
    await until(B, (v) => v.state.persona.identity === markerSaved, 'showing the persona text');
    await until(A, (v) => v.status.pending === 0 && v.status.unsavedPersona.length === 0, 'settled');
    ok(full().persona.identity === markerSaved, 'state_full has another persona.identity');
    ok((await B.page.locator('textarea[data-field="identity"]').inputValue()) === markerSaved, 'B\'s textarea does not show it');
    for (const d of [A, B]) {
      const st = await storage(d);
      ok(st.length > 0, `${d.name}: nothing in localStorage`);
      ok(!JSON.stringify(st).includes(markerSaved.slice(-8)), `${d.name}: persona text in localStorage`);
    }
  });

  // ---- offline: two writes, a reload, back online
  const v0 = version();
  let queued = [];
  await check('offline (context.setOffline): two writes are queued in localStorage with the cursor, no persona text', async () => {
    await A.context.setOffline(true);
    await until(A, (v) => !v.status.online, 'offline');
    await setLevel(A, 1);
    await setShield(A, 'estricto');
    // unsaved persona text: in memory only, announced
    await persona(A, 'intolerance').locator('textarea').fill(markerUnsaved);
    await persona(A, 'intolerance').locator('button').click();
    const v = await until(A, (x) => x.status.pending === 3, 'holding three writes');
    ok(v.state.roasting.roast_level === 1 && v.state.roasting.shield_level === 'estricto', 'not shown at once');
    ok(v.status.unsavedPersona.includes('persona.intolerance'), 'unsaved persona text not announced');
    queued = v.pending.filter((p) => !('persona.intolerance' in p.changes)).map((p) => p.mutationId);
    ok(queued.length === 2, `${queued.length} storable writes`);
    await A.page.evaluate(() => window.roastrDevices[0].client.flush());
    const st = Object.fromEntries(await storage(A));
    const doc = JSON.parse(st['A:roastr_state'] ?? 'null');
    ok(doc, `no A:roastr_state in localStorage (keys: ${Object.keys(st)})`);
    ok(doc.cursor === v0, `stored cursor ${doc.cursor}, expected ${v0}`);
    ok(JSON.stringify(doc.queue.map((w) => w.id)) === JSON.stringify(queued), `stored queue ${JSON.stringify(doc.queue.map((w) => w.id))}`);
    const raw = JSON.stringify(st);
    ok(!raw.includes(markerSaved.slice(-8)) && !raw.includes(markerUnsaved.slice(-8)), 'persona text in localStorage');
    ok(version() === v0, 'the server changed while A was offline');
    return `queue ${queued.join(', ')}; ${raw.length} bytes stored`;
  });

  await check('reload while offline: the queue and cursor come back from storage, unsaved persona text is gone', async () => {
    // the page's files come from the test while the context is offline
    const serve = async (route) => {
      if (BREAK && /\/src\/client\.js$/.test(route.request().url())) return route.fallback();
      const res = await fetch(route.request().url());
      await route.fulfill({ status: res.status, contentType: res.headers.get('content-type') ?? undefined, body: Buffer.from(await res.arrayBuffer()) });
    };
    const origin = new RegExp(`^${PAGE_URL.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/`);
    await A.context.route(origin, serve);
    A.dialogs.length = 0;
    await A.page.reload();
    await until(A, (v) => v.status.pending >= 0, 'loaded');
    const v = await until(A, (x) => x.status.pending === 2, 'holding the two queued writes', 5000);
    ok(!v.status.online, 'online while the context is offline');
    ok(v.state._meta.version === v0, `cursor ${v.state._meta.version} after the reload, expected ${v0}`);
    ok(JSON.stringify(v.pending.map((p) => p.mutationId)) === JSON.stringify(queued), 'other mutation ids after the reload');
    ok(v.state.roasting.roast_level === 1 && v.state.roasting.shield_level === 'estricto', 'queued values not shown after the reload');
    ok(v.state.persona.intolerance !== markerUnsaved, 'unsaved persona text survived the reload');
    ok(version() === v0, 'the server changed while A was offline');
    await A.context.unroute(origin, serve);
    return `the page asked before leaving: ${A.dialogs.includes('beforeunload') ? 'yes (beforeunload)' : 'no'}`;
  });

  await check('back online: both writes applied exactly once (version +2, each mutation_id once) and seen by B', async () => {
    await A.context.setOffline(false);
    await until(A, (v) => v.status.state === 'online' && v.status.pending === 0 && v.state._meta.version === v0 + 2, 'online with both writes applied', 20000);
    await until(B, (v) => v.state.roasting.roast_level === 1 && v.state.roasting.shield_level === 'estricto' && v.state._meta.version === v0 + 2, 'showing both writes');
    await sleep(300);   // a duplicate send would show now
    const s = full();
    ok(s._meta.version === v0 + 2, `version ${s._meta.version}, expected ${v0 + 2}`);
    ok(s.roasting.roast_level === 1 && s.roasting.shield_level === 'estricto', `state_full roasting ${JSON.stringify(s.roasting)}`);
    const log = sync(v0);
    const changed = log.changes.map((c) => `${c.field}@${c.version}`).sort();
    ok(JSON.stringify(changed) === JSON.stringify([`roasting.roast_level@${v0 + 1}`, `roasting.shield_level@${v0 + 2}`]), `history since ${v0}: ${changed}`);
    const rows = sql(`SELECT mutation_id || ' ' || (result->>'version') FROM roastr_state.mutations WHERE user_id = '${U}' AND mutation_id IN (${queued.map((q) => `'${q}'`).join(', ')}) ORDER BY 1`).split('\n').filter(Boolean);
    ok(rows.length === 2, `mutations rows: ${JSON.stringify(rows)}`);
    const A2 = await view(A);
    ok(A2.state.persona.identity === markerSaved, 'A did not read the persona text back after the reload');
    return `history since ${v0}: ${changed.join(', ')}; mutations: ${rows.join('; ')}`;
  });

  // ---- conflicts: A offline writes roast_level, B writes it, A comes back
  const rounds = [
    { choice: 'mine', a: 5, b: 2, want: 5, delta: 2 },
    { choice: 'server', a: 4, b: 1, want: 1, delta: 1 },
    { choice: 'merge', a: 5, b: 2, merged: 3, want: 3, delta: 2 },
  ];
  for (const r of rounds) {
    await check(`conflict on roasting.roast_level reaches A only; '${r.choice}' ends with ${r.want} in state_full`, async () => {
      const base = version();
      await A.context.setOffline(true);
      await until(A, (v) => !v.status.online, 'offline');
      await setLevel(A, r.a);
      await until(A, (v) => v.status.pending === 1, 'holding its write');
      await setLevel(B, r.b);
      await until(B, (v) => v.status.pending === 0 && v.state._meta.version === base + 1, 'with its write applied');
      ok(full().roasting.roast_level === r.b, 'B\'s write is not on the server');
      await A.context.setOffline(false);
      const v = await until(A, (x) => x.conflicts.length === 1 && x.conflicts[0].serverKnown && x.status.online, 'showing a conflict', 20000);
      const c = v.conflicts[0];
      ok(c.field === 'roasting.roast_level' && c.mine === r.a && c.server === r.b, `conflict ${JSON.stringify(c)}`);
      ok(v.state.roasting.roast_level === r.b, 'A shows its own value while the conflict is open (should show the server\'s)');
      const dialog = A.page.locator('.conflict');
      await dialog.waitFor({ state: 'visible', timeout: 5000 });
      const text = await dialog.innerText();
      ok(text.includes(String(r.a)) && text.includes(String(r.b)), `dialog: ${text}`);
      ok((await view(B)).conflicts.length === 0, 'B has a conflict too');
      if (r.choice === 'mine') {
        await A.page.screenshot({ path: path.join(OUT_DIR, 'conflict-A.png') });
        await dialog.getByRole('button', { name: 'Mantener el mío' }).click();
      } else if (r.choice === 'server') {
        await dialog.getByRole('button', { name: 'Usar el del servidor' }).click();
      } else {
        await dialog.locator('input').fill(String(r.merged));
        await dialog.getByRole('button', { name: 'Combinar' }).click();
      }
      await until(A, (x) => x.conflicts.length === 0 && x.status.pending === 0 && x.state._meta.version === base + r.delta, 'settled', 10000);
      await until(B, (x) => x.state.roasting.roast_level === r.want && x.state._meta.version === base + r.delta, `showing ${r.want}`);
      ok(await dialog.isHidden(), 'the dialog is still open');
      const s = full();
      ok(s.roasting.roast_level === r.want, `state_full roast_level ${s.roasting.roast_level}, expected ${r.want}`);
      ok(s._meta.version === base + r.delta, `version ${s._meta.version}, expected ${base + r.delta}`);
      ok((await view(A)).state.roasting.roast_level === r.want, 'A differs');
      return `A ${r.a} vs B ${r.b} → ${r.want}, version ${base} → ${s._meta.version}`;
    });
  }

  // ---- polling: B's socket is refused, /api/state/sync is not
  await check('socket refused (routed away): B polls /api/state/sync, a consume_roasts through SQL reaches it (status.via http)', async () => {
    let blocked = 0;
    await B.context.routeWebSocket(/\/socket\.io\//, (ws) => {
      blocked++;
      ws.close({ code: 1011, reason: 'refused by the test' });
    });
    await B.context.route(/\/socket\.io\//, (route) => route.abort('connectionrefused'));
    await B.page.goto(pageUrl('B', '&pollMs=1000'));
    await until(B, (v) => v.status.via === 'http' && v.status.ready, 'polling', 15000);
    const before = full().usage;
    const res = JSON.parse(sql(`SET ROLE service_role; SELECT roastr_state.consume_roasts('${U}', 3)`).split('\n').at(-1));
    ok(res.allowed === true, `consume_roasts: ${JSON.stringify(res)}`);
    const after = full();
    const v = await until(B, (x) => x.state.usage.remaining_roasts === after.usage.remaining_roasts && x.state._meta.version === after._meta.version, `showing remaining_roasts ${after.usage.remaining_roasts}`, 10000);
    ok(v.status.via === 'http' && v.status.online, `status ${JSON.stringify(v.status)}`);
    ok(blocked > 0, 'no socket was attempted');
    ok((await B.page.locator('.status').innerText()).includes('vía http'), 'the page does not say "vía http"');
    // and a change from the other device, over the socket there, reaches it too
    await row(A, 'Roasting activado').locator('input').click();
    const want = (await view(A)).state.roasting.enabled;
    await until(B, (x) => x.state.roasting.enabled === want && x.status.via === 'http', `showing A's toggle by polling`, 10000);
    return `remaining_roasts ${before.remaining_roasts} → ${after.usage.remaining_roasts}; ${blocked} socket attempt(s) refused`;
  });

  await check('both devices equal state_full at the end', async () => {
    const s = full();
    for (const d of [A, B]) {
      const v = await until(d, (x) => x.state._meta.version === s._meta.version && x.status.pending === 0, `at version ${s._meta.version}`, 10000);
      for (const sec of ['auth', 'subscription', 'persona', 'roasting', 'usage', 'organization']) {
        ok(isDeepStrictEqual(v.state[sec], s[sec]), `${d.name}: ${sec} ${JSON.stringify(v.state[sec])} vs ${JSON.stringify(s[sec])}`);
      }
    }
  });

  await check('screenshots of both devices', async () => {
    const paths = [];
    for (const d of [A, B]) {
      const p = path.join(OUT_DIR, `device-${d.name}.png`);
      await d.page.screenshot({ path: p, fullPage: true });
      ok(fs.statSync(p).size > 5000, `${p} is too small`);
      paths.push(p);
    }
    const c = path.join(OUT_DIR, 'conflict-A.png');
    if (fs.existsSync(c)) paths.push(c);
    notes.push(`screenshots: ${paths.join(' ')}`);
    return paths.join(' ');
  });
}

// Stopped from outside (the test's timeout, Ctrl-C): close the browser, stop.
for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]]) {
  process.once(sig, () => {
    stopping = true;
    failed++;
    console.log(`# ${sig}: stopping (${passed} passed, ${failed} failed so far)`);
    const done = () => process.exit(code);
    setTimeout(done, 5000).unref();
    (browser ? browser.close() : Promise.resolve()).catch(() => {}).finally(done);
  });
}

let status = 0;
try {
  await main();
} catch (err) {
  failed++;
  console.log(`not ok - the test could not go on: ${err.stack ?? err}`);
} finally {
  if (failed > 0) {
    for (const d of Object.values(devices)) {
      console.log(`---- device ${d.name}: last page messages`);
      for (const l of d.log.slice(-15)) console.log(`   ${l.slice(0, 300)}`);
    }
  }
  await browser?.close().catch(() => {});
}
for (const n of notes) console.log(`# ${n}`);
console.log(`# ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`${passed} passed, ${failed} failed`);
if (failed > 0) status = 1;
process.exit(status);
