// Randomized: several devices of one user against the server model, with
// local writes, writes by the server and other parties, notifications and
// deliveries dropped, duplicated, reordered and delayed, requests lost
// before or after the server ran them, disconnects, reloads (a new client
// from the same storage, after a clean close or a crash) and failovers.
// At the end every device shows exactly the server's state, every
// mutation_id was applied at most once, and no persona text ever reached
// a device's storage.
//
//   ROASTR_SEED=1234 npm test          replay one run (printed on failure)
//   ROASTR_ITERATIONS=2000 npm test    more runs (default 300)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createStateClient } from '../src/client.js';
import { memoryStorage } from '../src/storage.js';
import { FIELDS } from '../src/fields.js';
import { Net, VirtualTimers, rng, settle } from './support/sim.js';

const ITERATIONS = Number(process.env.ROASTR_ITERATIONS ?? 300);
const FIXED_SEED = process.env.ROASTR_SEED === undefined ? null : Number(process.env.ROASTR_SEED);
const STEPS = Number(process.env.ROASTR_STEPS ?? 120);

function localChange(r, n) {
  const which = r.int(10);
  const changes = {};
  const one = () => {
    switch (r.int(8)) {
      case 0: changes['roasting.enabled'] = r.chance(0.5); break;
      case 1: changes['roasting.roast_level'] = r.chance(0.05) ? 9 : 1 + r.int(5); break;       // 9: refused, 22023
      case 2: changes['roasting.shield_level'] = r.pick(['tolerante', 'balanceado', 'estricto']); break;
      case 3: changes['auth.name'] = r.pick(['Ann', 'Bo', null, `Name ${n}`]); break;
      case 4: changes['persona.identity'] = r.chance(0.2) ? null : `persona-identity-${n}`; break;
      case 5: changes['persona.intolerance'] = `persona-intolerance-${n}`; break;
      case 6: changes['persona.tolerance'] = `persona-tolerance-${n}`; break;              // PT402 below pro
      default: changes['roasting.roast_level'] = 1 + r.int(5);
    }
  };
  one();
  if (which < 3) one();
  return changes;
}

function serverSide(net, r, n) {
  const m = net.model;
  switch (r.int(7)) {
    case 0: m.consume(1 + r.int(3)); break;
    case 1:
      m.patch({ changes: { 'subscription.plan': r.pick(['free', 'starter', 'pro', 'plus']) } }, { service: true, by: 'service' });
      break;
    case 2:
      m.setOrganization(r.chance(0.3) ? null : { id: `00000000-0000-4000-8000-0000000000${10 + r.int(3)}`, name: `Org ${n}`, slug: `org-${n}`, role: r.pick(['owner', 'admin', 'member']) });
      break;
    case 3:
      m.patch({ changes: { 'persona.embeddings_model': 'm1', 'persona.embeddings_generated_at': '2026-11-02T00:00:00+00:00' } }, { service: true, by: 'service' });
      break;
    default: {
      // another party writes as the user, last-write-wins or with a base
      const changes = localChange(r, n);
      const base = r.chance(0.5) ? null : Math.max(1, m.version - r.int(3));
      try {
        m.patch({ changes, base_version: base, mutation_id: null }, { by: 'other' });
      } catch { /* refused or conflicting: nothing happens */ }
    }
  }
}

const get = (obj, f) => {
  const [sec, k] = f.split('.');
  return obj[sec] === null ? null : obj[sec][k];
};

// The rebase rule, at every step: what a device shows is the server's state
// at the device's cursor (a field with an open conflict: the server value
// the conflict was told, when newer), with on top, in order: the writes it was told were
// applied at a version above its cursor (the network's record of the acks,
// not the client's), then the writes it has not had confirmed.
function checkRebase(d, net) {
  const { state, status } = d.client;
  if (state._meta.version === 0) return;   // nothing from the server yet
  const at = net.model.s.at[state._meta.version];
  assert.ok(at, `device ${d.devId}: cursor ${state._meta.version} is no server version`);
  const overlay = {};
  const unconfirmed = {};
  for (const a of net.acked.get(d.devId) ?? []) if (a.version > state._meta.version) Object.assign(overlay, a.changes);
  for (const p of d.client.pending) if (p.version === null) Object.assign(unconfirmed, p.changes);
  Object.assign(overlay, unconfirmed);
  for (const f of FIELDS) {
    // after a reload, persona text is unknown until the first full sync
    // (it is never in storage), confirmed or not
    if (!status.ready && f.startsWith('persona.') && !(f in unconfirmed)) continue;
    // no sync reports auth.userId: it comes from state_full after the first
    if (f === 'auth.userId' && get(state, f) === null) continue;
    // an open conflict shows the server value it was told, when newer than the cursor
    const told = d.client.conflicts.find((c) => c.field === f && c.serverKnown && c.serverVersion > state._meta.version);
    const want = f in overlay ? overlay[f] : told ? told.server : get(at, f);
    if (process.env.ROASTR_DEBUG && JSON.stringify(get(state, f)) !== JSON.stringify(want)) {
      console.log(JSON.stringify({ status, pending: d.client.pending, acked: net.acked.get(d.devId), conflicts: d.client.conflicts }, null, 1));
      console.log(net.model.s.history.map((h) => `${h.version} ${h.by} ${h.fields.join(',')} ${h.mutationId ?? ''}`).join('\n'));
    }
    assert.deepEqual(get(state, f), want, `device ${d.devId}: ${f} at cursor ${state._meta.version}`);
  }
}

// No lost update: a device's write never replaced a value that another
// party wrote after the version its user saw (that is a conflict to show).
function checkNoLostUpdate(history, intents, senders) {
  for (let i = 0; i < history.length; i++) {
    const h = history[i];
    const it = intents.get(h.mutationId);
    if (!it) continue;
    for (const f of h.fields) {
      if (f.startsWith('persona.embeddings')) continue;
      let j = i - 1;
      while (j >= 0 && !history[j].fields.includes(f)) j--;
      const prev = history[j];
      const mine = prev.mutationId && intents.get(prev.mutationId)?.dev === it.dev;
      if (!(mine || prev.version <= it.seen)) {
        const who = (id) => (intents.get(id) ? `${intents.get(id).dev}/seen ${intents.get(id).seen}` : `untracked from ${senders.get(id)}`);
        console.log(history.map((x) => `${x.version} ${x.by} ${x.mutationId ? who(x.mutationId) : ''} ${x.mutationId ?? ''} ${x.fields.join(',')}`).join('\n'));
      }
      assert.ok(mine || prev.version <= it.seen,
        `lost update: ${it.dev}'s write ${h.mutationId} (seen ${it.seen}) replaced ${f} written at ${prev.version} by ${prev.by}`);
    }
  }
}

async function run(seed, opts = {}) {
  const trace = [];
  try {
    return await run1(seed, opts, trace);
  } catch (err) {
    err.trace = trace;
    throw err;
  }
}

const stats = { conflicts: 0, rejected: 0, resets: 0, instances: 0, failovers: 0, lossy: 0, historyResets: 0 };

async function run1(seed, { log = false } = {}, trace) {
  const r = rng(seed);
  const net = new Net({ random: r });
  const timers = new VirtualTimers();
  const storages = new Map();
  const devices = [];
  const nDevices = 2 + r.int(3);
  const personaSeen = [];
  let n = 0;
  const note = (s) => {
    if (log) trace.push(s);
  };

  function startInstance(devId) {
    const storage = storages.get(devId);
    const guard = { dead: false };
    const guarded = {
      get: (k) => storage.get(k),
      set: async (k, v) => {
        if (!guard.dead) await storage.set(k, v);
      },
      remove: async (k) => {
        if (!guard.dead) await storage.remove(k);
      },
    };
    const t = net.transport(devId);
    const client = createStateClient({ transport: t, storage: guarded, timers, random: r, retryMinMs: 10, retryMaxMs: 200 });
    client.on('conflict', () => stats.conflicts++);
    client.on('error', () => stats.rejected++);
    client.on('reset', () => stats.resets++);
    stats.instances++;
    return { devId, client, t, guard };
  }

  for (let i = 0; i < nDevices; i++) {
    const devId = `d${i}`;
    storages.set(devId, memoryStorage());
    net.devices.set(devId, true);
    devices.push(startInstance(devId));
  }
  await settle();
  for (const d of devices) net.connect(d.t);
  await settle();

  // What each device's user saw when writing: mutation_id -> {dev, seen}.
  const intents = new Map();
  const track = (d) => {
    for (const p of d.client.pending) if (!intents.has(p.mutationId) && p.seen !== null) intents.set(p.mutationId, { dev: d.devId, seen: p.seen });
  };
  let failedOver = false;
  let snap = null;
  for (let step = 0; step < STEPS; step++) {
    n++;
    const d = r.pick(devices);
    const roll = r.int(100);
    if (roll < 18) {
      const changes = localChange(r, n);
      for (const v of Object.values(changes)) if (typeof v === 'string' && v.startsWith('persona-')) personaSeen.push(v);
      note(`${d.devId} patch ${JSON.stringify(changes)}`);
      d.client.patch(changes);
      track(d);
    } else if (roll < 26) {
      serverSide(net, r, n);
      note(`server write -> v${net.model.version} ${net.model.line} ${JSON.stringify(net.model.s.history.at(-1))}`);
    } else if (roll < 38 && net.listenDown && r.chance(0.3)) {
      note('gateway LISTEN back');
      net.relisten();
    } else if (roll < 38 && net.notes.length > 0) {
      // a notification reaches the gateway: in order, reordered, duplicated or lost
      const i = r.chance(0.7) ? 0 : r.int(net.notes.length);
      const msg = net.notes[i];
      const fate = r.int(10);
      if (fate === 0) net.notes.splice(i, 1);
      else if (fate === 1) net.gatewayNotify(msg);
      else {
        net.notes.splice(i, 1);
        net.gatewayNotify(msg);
      }
    } else if (roll < 58) {
      // a gateway message reaches its device: in order, reordered, duplicated or lost
      const conns = [...net.conns].filter((c) => c.inbox.length > 0);
      if (conns.length > 0) {
        const c = r.pick(conns);
        const i = r.chance(0.75) ? 0 : r.int(c.inbox.length);
        const fate = r.int(20);
        const m = c.inbox[i];
        note(`  ${c.t.devId} <- ${m.kind} v${m.version ?? m.cursor} ${m.history} ${m.reset ? 'RESET' : ''} since ${m.since} fate ${fate}`);
        if (fate === 0) c.inbox.splice(i, 1);
        else if (fate === 1) {
          c.inbox.splice(i + 1, 0, c.inbox[i]);
          net.deliver(c, i);
        } else net.deliver(c, i);
      }
    } else if (roll < 74) {
      // a request: the server runs it, it is answered, or it fails (before or after running)
      if (net.rpcs.length > 0) {
        const rq = r.pick(net.rpcs);
        const fate = r.int(10);
        if (fate < 4) {
          if (!rq.done) net.process(rq);
          else net.answer(rq);
        } else if (fate < 8) net.answer(rq);
        else if (fate === 8) {
          if (rq.kind === 'patch' && !rq.done) net.process(rq);
          if (rq.kind === 'patch') net.process(rq);        // a duplicated request
          net.fail(rq);
        } else net.fail(rq, rq.kind === 'sync' && r.chance(0.5) ? 'PT503' : 'NETWORK');   // PT503: a standby behind
      }
    } else if (roll < 84) {
      timers.fireNext();
    } else if (roll < 89) {
      if (d.t.conn) {
        note(`${d.devId} disconnect`);
        net.disconnect(d.t);
      } else {
        note(`${d.devId} connect`);
        net.connect(d.t);
      }
    } else if (roll < 93) {
      const conflicts = d.client.conflicts;
      if (conflicts.length > 0) {
        const c = r.pick(conflicts);
        const choice = r.pick(['mine', 'server', 'value']);
        note(`${d.devId} resolve ${c.field} ${choice}`);
        d.client.resolve(c, choice === 'value' ? { value: c.field === 'roasting.enabled' ? !c.mine : c.mine } : choice);
        track(d);
      }
    } else if (roll < 96) {
      // reload: a clean close, or a crash (storage keeps what it had)
      const crash = r.chance(0.5);
      note(`${d.devId} reload ${crash ? 'crash' : 'clean'}`);
      if (crash) d.guard.dead = true;
      await d.client.close();
      const i = devices.indexOf(d);
      devices[i] = startInstance(d.devId);
      await settle();
      if (r.chance(0.8)) net.connect(devices[i].t);
    } else if (roll < 98) {
      snap = net.model.snapshot();
    } else if (snap) {
      // a failover that loses the versions after the snapshot: they are
      // handed out again, at or below the cursors of devices that had them
      note(`failover to version ${snap.version} (from ${net.model.version})`);
      if (snap.version < net.model.version) stats.lossy++;
      stats.failovers++;
      net.restore(snap);
      snap = null;
      failedOver = true;
    }
    await settle();
    for (const dv of devices) track(dv);
    if (!failedOver) for (const dv of devices) checkRebase(dv, net);
  }

  // Quiesce: no more faults; everything connects, every message and
  // request goes through, conflicts are decided, timers run out.  Once all
  // is quiet, everyone reconnects (a device whose last notification was
  // lost, or that missed a failover no notification told it of, learns of
  // it there), and it goes on until all is quiet again.
  net.relisten();
  let lastSync = false;
  for (let round = 0; round < 400; round++) {
    let busy = false;
    for (const d of devices) {
      if (!d.t.conn) {
        net.connect(d.t);
        busy = true;
      }
    }
    while (net.notes.length > 0) {
      net.gatewayNotify(net.notes.shift());
      busy = true;
    }
    for (const c of net.conns) {
      while (c.inbox.length > 0) {
        net.deliver(c, 0);
        busy = true;
      }
    }
    await settle();
    for (const d of devices) track(d);
    for (const rq of [...net.rpcs]) {
      net.answer(rq);
      busy = true;
    }
    await settle();
    for (const d of devices) track(d);
    for (const d of devices) {
      for (const c of d.client.conflicts) {
        d.client.resolve(c, r.pick(['mine', 'server']));
        track(d);
        busy = true;
      }
    }
    await settle();
    if (!busy) {
      if (!timers.fireNext()) {
        const idle = devices.every((d) => d.client.status.pending === 0 && d.client.conflicts.length === 0
          && d.client.status.state === 'online');
        if (idle && lastSync) break;
        if (idle) {
          lastSync = true;
          for (const d of devices) {
            net.disconnect(d.t);
            net.connect(d.t);
          }
        }
      }
      await settle();
    }
  }
  // A last sync for everyone: a device whose last notification was lost
  // learns about it here, as it would at its next reconnect.
  for (const d of devices) {
    net.disconnect(d.t);
    net.connect(d.t);
    for (const c of net.conns) while (c.inbox.length > 0) net.deliver(c, 0);
    await settle();
  }
  // (answering what that asked for: a pull, or state_full for auth.userId)
  for (let i = 0; i < 50; i++) {
    for (const c of net.conns) while (c.inbox.length > 0) net.deliver(c, 0);
    await settle();
    for (const rq of [...net.rpcs]) net.answer(rq);
    await settle();
    if (net.rpcs.length === 0 && [...net.conns].every((c) => c.inbox.length === 0) && !timers.fireNext()) break;
    await settle();
  }
  await settle();

  const full = net.model.full();
  if (log) {
    for (const d of devices) trace.push(`${d.devId}: history ${JSON.parse((await storages.get(d.devId).get('roastr_state')) ?? '{}').history} (server ${net.model.token()})`);
    for (const d of devices) trace.push(`${d.devId}: ${JSON.stringify(d.client.status)} pending ${JSON.stringify(d.client.pending)} persona ${JSON.stringify(d.client.state.persona)}`);
    trace.push(`server ${JSON.stringify(full.persona)} v${full._meta.version}`);
    trace.push(...net.model.s.history.slice(-12).map((h) => JSON.stringify(h)));
  }
  for (const d of devices) {
    const shown = d.client.state;
    for (const sec of ['auth', 'subscription', 'persona', 'roasting', 'usage', 'organization']) {
      assert.deepEqual(shown[sec], full[sec], `device ${d.devId}: ${sec} differs from the server`);
    }
    assert.equal(shown._meta.version, full._meta.version, `device ${d.devId}: version`);
    assert.equal(d.client.status.pending, 0, `device ${d.devId}: writes left`);
  }
  if (!failedOver) checkNoLostUpdate(net.model.s.history, intents, net.senders);
  stats.historyResets += net.model.historyResets;
  const ids = net.model.s.history.map((h) => h.mutationId).filter(Boolean);
  assert.equal(new Set(ids).size, ids.length, 'a mutation_id was applied twice');
  for (const [devId, st] of storages) {
    for (const [, v] of st.entries()) {
      for (const p of personaSeen) assert.ok(!v.includes(p), `device ${devId} stored persona text ${p}`);
    }
  }
  for (const d of devices) await d.client.close();
  return { versions: net.model.version, applied: ids.length, trace };
}

if (process.env.ROASTR_DEBUG) { /* imported by a debugging script */ } else test(`randomized: ${FIXED_SEED ?? ITERATIONS} ${FIXED_SEED === null ? 'seeds' : '(fixed seed)'}`, async () => {
  const base = FIXED_SEED ?? (Date.now() % 1_000_000_000);
  const seeds = FIXED_SEED === null ? Array.from({ length: ITERATIONS }, (_, i) => base + i) : [FIXED_SEED];
  console.log(`# randomized: first seed ${seeds[0]} (replay one with ROASTR_SEED=<seed>)`);
  let versions = 0;
  let applied = 0;
  for (const seed of seeds) {
    try {
      const res = await run(seed);
      versions += res.versions;
      applied += res.applied;
    } catch (err) {
      err.message = `seed ${seed}: ${err.message}\n  replay: ROASTR_SEED=${seed} npm test -- --test-name-pattern=randomized`;
      throw err;
    }
  }
  console.log(`# randomized: ${seeds.length} runs, ${versions} server versions, ${applied} device writes applied, `
    + `${stats.conflicts} conflicts raised, ${stats.rejected} writes refused, ${stats.instances} client instances; `
    + `${stats.failovers} failovers (${stats.lossy} losing versions), ${stats.resets} resets, `
    + `${stats.historyResets} of them at a cursor the new history had reissued (only the history tells)`);
});

export { run, FIELDS };
