// An in-memory model of one user's state in the roastr_state extension, with
// its rules as the extension implements them (src/trigger.c, src/state.c,
// src/notify.c):
//   - one user version, bumped once per write that changes a value; a write
//     that changes nothing keeps the version;
//   - a version per field; a value computed from other fields carries the
//     newest version among them (remaining roasts, limit, plan...);
//   - a write with base B conflicts (PT409) only on fields it changes whose
//     version is above B (and only when B is not the current version);
//     a base above the current version is 22023;
//   - mutation_id: a retry of the same request answers the first result and
//     changes nothing; the same id for another request is 22023; a failed
//     call records nothing;
//   - persona text: writing the text a field holds is no change; a change
//     clears persona.embeddings_*; tolerance needs pro or plus (PT402) and
//     reads as null below them, keeping the text and its version;
//   - notifications {type, version, fields, data, history} as 0.4.0 sends
//     them: `fields` names every shown path whose value state_sync(version
//     - 1) reports at that version, derived values included; `data` holds
//     their values except persona text, personal values and the
//     organization (named only);
//   - histories (0.5.0, src/history.c): the server is on a timeline of a
//     cluster ("<sysid>.<tli>"), and every commit moves its WAL position.
//     state_sync answers "<sysid>.<tli>.<WAL hex>", patch and notifications
//     "<sysid>.<tli>".  restore(snapshot) is a failover that lost the
//     commits after the snapshot (or a point-in-time restore): a new
//     timeline whose versions after the snapshot's are handed out again.
//     state_sync(since, history) is reset: true, with every field, unless
//     the cursor is of this timeline (and not beyond the version), or of an
//     ancestor one at a WAL position at or before the point this history
//     left it; no history: reset only when the cursor is beyond the version.
// Browser-safe (the example page runs it); no Node imports.

export class ModelError extends Error {
  constructor(code, message, detail = null) {
    super(message);
    this.code = code;
    this.detail = detail;
  }
}

const PLAN_LIMIT = { free: 100, starter: 500, pro: 1000, plus: null };
const SHIELD = ['tolerante', 'balanceado', 'estricto'];
const PERSONA = ['persona.identity', 'persona.intolerance', 'persona.tolerance'];
const USER = new Set(['auth.name', 'roasting.enabled', 'roasting.roast_level', 'roasting.shield_level', ...PERSONA]);
const SERVICE = new Set([...USER, 'auth.email', 'subscription.plan', 'subscription.status', 'subscription.trial_ends_at',
  'subscription.current_period_start', 'subscription.current_period_end', 'subscription.polar_subscription_id',
  'subscription.polar_customer_id', 'subscription.cancel_at_period_end', 'persona.embeddings_generated_at', 'persona.embeddings_model']);
const DERIVED = new Set(['subscription.trial_days_remaining', 'usage.monthly_roasts_limit', 'usage.remaining_roasts',
  'usage.reset_date', 'auth.userId', 'organization.name', 'organization.slug', 'organization.role',
  'usage.monthly_roasts_used', 'usage.period_start', 'organization.id']);
const PERSONAL = new Set(['auth.email', 'auth.name', 'subscription.polar_subscription_id', 'subscription.polar_customer_id']);
// Stored fields (what a write changes and the log versions).
const STORED = ['auth.email', 'auth.name', 'subscription.plan', 'subscription.status', 'subscription.trial_ends_at',
  'subscription.current_period_start', 'subscription.current_period_end', 'subscription.polar_subscription_id',
  'subscription.polar_customer_id', 'subscription.cancel_at_period_end', ...PERSONA, 'persona.embeddings_generated_at', 'persona.embeddings_model',
  'roasting.enabled', 'roasting.roast_level', 'roasting.shield_level', 'usage.monthly_roasts_used', 'organization.id'];
const KIND = (f) => (f === 'roasting.enabled' ? 'roasting_toggle' : `${f.split('.')[0]}_update`);  // organization.* too
const DEPS_PLAN = ['subscription.status', 'subscription.trial_ends_at', 'subscription.plan', 'subscription.current_period_end'];
const DEPS_USED = [...DEPS_PLAN, 'subscription.current_period_start', 'usage.monthly_roasts_used'];

const clone = (x) => JSON.parse(JSON.stringify(x));

export class ServerModel {
  constructor({ userId = '00000000-0000-4000-8000-000000000001', email = 'ann@example.com' } = {}) {
    this.userId = userId;
    const v = {
      'auth.email': email, 'auth.name': null, 'subscription.plan': 'free', 'subscription.status': 'active',
      'subscription.trial_ends_at': null, 'subscription.current_period_start': null,
      'subscription.current_period_end': null, 'subscription.polar_subscription_id': null,
      'subscription.polar_customer_id': null, 'subscription.cancel_at_period_end': false, 'persona.identity': null, 'persona.intolerance': null,
      'persona.tolerance': null, 'persona.embeddings_generated_at': null, 'persona.embeddings_model': null,
      'roasting.enabled': true, 'roasting.roast_level': 3, 'roasting.shield_level': 'balanceado',
      'usage.monthly_roasts_used': 0, 'organization.id': null,
    };
    this.s = {
      version: 1,
      values: v,
      fv: Object.fromEntries(STORED.map((f) => [f, 1])),
      org: null,                 // {id, name, slug, role} of organization.id
      mutations: {},             // id -> {key, result}
      history: [{ version: 1, mutationId: null, fields: [...STORED], by: 'ensure_user' }],
      at: {},                    // version -> state_full at that version (for the tests' checks)
    };
    this.sysid = '7391234567890123456';
    this.s.tli = 1;
    this.s.lsn = 0x1000028;
    this.maxTli = 1;
    this.parents = new Map();    // timeline -> {parent, fork}: where it left its parent's WAL
    this.historyResets = 0;      // resets only a history could tell (the cursor is not beyond the version)
    this.listeners = new Set();
    this.clock = Date.parse('2026-11-01T00:00:00Z');
    this.s.at[1] = this.full();
  }

  get version() {
    return this.s.version;
  }

  // "<sysid>.<tli>": what patch and notifications carry.
  get line() {
    return `${this.sysid}.${this.s.tli}`;
  }

  // "<sysid>.<tli>.<WAL hex>": what state_sync and state_full carry.
  token() {
    return `${this.line}.${this.s.lsn.toString(16).toUpperCase()}`;
  }

  // Whether a cursor of `history` (null: a bare cursor) is in this
  // server's history, as src/history.c judges it on a primary.
  owns(since, history) {
    if (since > this.s.version) return false;
    if (history === null) return true;
    const [sysid, tli, lsn] = history.split('.');
    if (sysid !== this.sysid) return false;
    if (Number(tli) === this.s.tli) return true;
    for (let t = this.s.tli; this.parents.has(t);) {
      const { parent, fork } = this.parents.get(t);
      if (parent === Number(tli)) return lsn !== undefined && parseInt(lsn, 16) <= fork;
      t = parent;
    }
    return false;
  }

  onNotify(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  // ---- writes ----

  // patch(user_id, changes, base_version, mutation_id) as a user (or the
  // service: {service: true}).  Returns {version, applied}; throws
  // ModelError with the SQLSTATE.
  patch({ changes, base_version = null, mutation_id = null }, { service = false, by = 'user' } = {}) {
    const s = this.s;
    const key = JSON.stringify([changes, base_version]);
    if (mutation_id !== null) {
      const rec = s.mutations[mutation_id];
      if (rec) {
        if (rec.key !== key) throw new ModelError('22023', `mutation_id ${mutation_id} was already used for a different patch`);
        return { ...clone(rec.result), history: this.line };
      }
    }
    if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) throw new ModelError('22023', 'changes must be a JSON object');
    for (const f of Object.keys(changes)) {
      if (DERIVED.has(f)) throw new ModelError('22023', `field "${f}" is derived and cannot be written`);
      if (!SERVICE.has(f)) throw new ModelError('22023', `unknown field "${f}"`);
      if (!service && !USER.has(f)) throw new ModelError('42501', `permission denied to write field "${f}"`);
    }
    if (base_version !== null) {
      if (base_version < 0) throw new ModelError('22023', 'base version must not be negative');
      if (base_version > s.version) throw new ModelError('22023', `base version ${base_version} is newer than the current version ${s.version}`);
    }
    for (const [f, val] of Object.entries(changes)) this.validate(f, val);
    if (Object.hasOwn(changes, 'persona.tolerance') && changes['persona.tolerance'] !== null
      && !['pro', 'plus'].includes(s.values['subscription.plan'])) {
      throw new ModelError('PT402', 'field "persona.tolerance" needs the pro or plus plan');
    }
    const changed = Object.keys(changes).filter((f) => JSON.stringify(s.values[f]) !== JSON.stringify(changes[f]));
    if (base_version !== null && base_version !== s.version) {
      const conflicts = changed.filter((f) => s.fv[f] > base_version);
      if (conflicts.length > 0) {
        const detail = {
          code: 'E_CONFLICT', server_version: s.version, client_version: base_version,
          conflicts: conflicts.map((f) => ({ field: f, server_value: PERSONA.includes(f) ? null : s.values[f], server_version: s.fv[f] })),
        };
        throw new ModelError('PT409', `version conflict: fields were changed after version ${base_version}`, JSON.stringify(detail));
      }
    }
    let result;
    if (changed.length === 0) {
      result = { version: s.version, applied: [], history: this.line };
    } else {
      const all = [...changed];
      if (changed.some((f) => PERSONA.includes(f))) {
        for (const f of ['persona.embeddings_generated_at', 'persona.embeddings_model']) {
          if (s.values[f] !== null && !changed.includes(f)) all.push(f);
        }
      }
      const nv = s.version + 1;
      for (const f of all) {
        s.values[f] = changed.includes(f) ? changes[f] : null;
        s.fv[f] = nv;
      }
      s.version = nv;
      s.history.push({ version: nv, mutationId: mutation_id, fields: all, by });
      result = { version: nv, applied: changed, history: this.line };
      this.announce(nv);
    }
    if (mutation_id !== null) s.mutations[mutation_id] = { key, result: clone(result) };
    return clone(result);
  }

  validate(f, v) {
    const bad = () => new ModelError('22023', `invalid value for field "${f}"`);
    switch (f) {
      case 'roasting.enabled': if (typeof v !== 'boolean') throw bad(); break;
      case 'roasting.roast_level': if (!Number.isInteger(v) || v < 1 || v > 5) throw bad(); break;
      case 'roasting.shield_level': if (!SHIELD.includes(v)) throw bad(); break;
      case 'auth.name': if (v !== null && (typeof v !== 'string' || v.length < 1 || v.length > 200)) throw bad(); break;
      case 'subscription.plan': if (!(v in PLAN_LIMIT)) throw bad(); break;
      default:
        if (PERSONA.includes(f) && v !== null && (typeof v !== 'string' || new TextEncoder().encode(v).length > 4000)) throw bad();
    }
  }

  // consume_roasts(n): a version that changes usage.monthly_roasts_used.
  consume(n = 1) {
    const s = this.s;
    const limit = PLAN_LIMIT[s.values['subscription.plan']];
    const used = s.values['usage.monthly_roasts_used'];
    if (limit !== null && used + n > limit) return { allowed: false };
    const nv = s.version + 1;
    s.values['usage.monthly_roasts_used'] = used + n;
    s.fv['usage.monthly_roasts_used'] = nv;
    s.version = nv;
    s.history.push({ version: nv, mutationId: null, fields: ['usage.monthly_roasts_used'], by: 'consume' });
    this.announce(nv);
    return { allowed: true };
  }

  // The organization functions: a version that changes organization.*.
  setOrganization(org) {
    const s = this.s;
    const nv = s.version + 1;
    s.org = org ? { ...org } : null;
    s.values['organization.id'] = org ? org.id : null;
    s.fv['organization.id'] = nv;
    s.version = nv;
    s.history.push({ version: nv, mutationId: null, fields: ['organization.id'], by: 'organization' });
    this.announce(nv);
  }

  // One notification per version: what state_sync(version - 1) reports at
  // `version`, named; values where payloads may carry them.
  announce(version) {
    const s = this.s;
    const it = this.items();
    const named = Object.keys(it).filter((f) => it[f][1] === version);
    s.lsn += 0x28 + 8 * named.length;      // the commit's WAL
    s.at[version] = this.full();
    const kinds = [...new Set(named.map(KIND))];
    const data = {};
    for (const f of named) {
      if (PERSONA.includes(f) || PERSONAL.has(f) || f.startsWith('organization')) continue;
      const [sec, k] = f.split('.');
      (data[sec] ??= {})[k] = it[f][0];
    }
    const msg = { type: kinds.length === 1 ? kinds[0] : kinds, version, fields: named, data, history: this.line };
    for (const fn of [...this.listeners]) fn(clone(msg));
  }

  // ---- reads ----

  // Every shown field with its effective value and version.
  items() {
    const s = this.s;
    const v = s.values;
    const fv = s.fv;
    const maxv = (deps) => Math.max(...deps.map((f) => fv[f]));
    const plan = v['subscription.plan'];
    const limit = PLAN_LIMIT[plan];
    const used = v['usage.monthly_roasts_used'];
    const orgV = fv['organization.id'];
    const org = s.org;
    const out = {
      'auth.userId': [this.userId, 1],
      'auth.email': [v['auth.email'], fv['auth.email']],
      'auth.name': [v['auth.name'], fv['auth.name']],
      'subscription.plan': [plan, maxv(DEPS_PLAN)],
      'subscription.status': [v['subscription.status'], maxv(['subscription.status', 'subscription.trial_ends_at'])],
      'subscription.trial_days_remaining': [null, maxv(DEPS_PLAN)],
      'subscription.trial_ends_at': [v['subscription.trial_ends_at'], fv['subscription.trial_ends_at']],
      'subscription.current_period_start': [v['subscription.current_period_start'], fv['subscription.current_period_start']],
      'subscription.current_period_end': [v['subscription.current_period_end'], fv['subscription.current_period_end']],
      'subscription.polar_subscription_id': [v['subscription.polar_subscription_id'], fv['subscription.polar_subscription_id']],
      'subscription.polar_customer_id': [v['subscription.polar_customer_id'], fv['subscription.polar_customer_id']],
      'subscription.cancel_at_period_end': [v['subscription.cancel_at_period_end'], fv['subscription.cancel_at_period_end']],
      'persona.identity': [v['persona.identity'], fv['persona.identity']],
      'persona.intolerance': [v['persona.intolerance'], fv['persona.intolerance']],
      // below pro the tolerance reads as null: the plan is an input (src/shown.c)
      'persona.tolerance': [['pro', 'plus'].includes(plan) ? v['persona.tolerance'] : null, maxv(['persona.tolerance', ...DEPS_PLAN])],
      'persona.embeddings_generated_at': [v['persona.embeddings_generated_at'], fv['persona.embeddings_generated_at']],
      'persona.embeddings_model': [v['persona.embeddings_model'], fv['persona.embeddings_model']],
      'roasting.enabled': [v['roasting.enabled'], fv['roasting.enabled']],
      'roasting.roast_level': [v['roasting.roast_level'], fv['roasting.roast_level']],
      'roasting.shield_level': [v['roasting.shield_level'], fv['roasting.shield_level']],
      'usage.monthly_roasts_used': [used, maxv(DEPS_USED)],
      'usage.monthly_roasts_limit': [limit, maxv(DEPS_PLAN)],
      'usage.remaining_roasts': [limit === null ? null : Math.max(limit - used, 0), maxv(DEPS_USED)],
      'usage.period_start': ['2026-11-01T00:00:00+00:00', maxv(DEPS_USED)],
      'usage.reset_date': ['2026-12-01T00:00:00+00:00', maxv([...DEPS_PLAN, 'subscription.current_period_start'])],
      'organization.id': [org ? org.id : null, orgV],
      'organization.name': [org ? org.name : null, orgV],
      'organization.slug': [org ? org.slug : null, orgV],
      'organization.role': [org ? org.role : null, orgV],
    };
    return out;
  }

  // state_sync(user, since, history): every field changed after `since`,
  // once, with its latest value, ordered by version; a cursor of another
  // history, or above the version, is reset: true with everything but
  // auth.userId (it has no version: only state_full shows it).
  sync(since = 0, history = null) {
    if (!Number.isSafeInteger(since) || since < 0) throw new ModelError('22023', 'cursor must not be negative');
    if (history !== null && !(typeof history === 'string' && history.length <= 64 && /^[0-9]+\.[0-9]+(\.[0-9A-F]+)?$/.test(history))) {
      throw new ModelError('22023', 'malformed history');
    }
    const reset = !this.owns(since, history);
    if (reset && since > 0 && since <= this.s.version) this.historyResets++;
    const from = reset ? 0 : since;
    const changes = Object.entries(this.items())
      .filter(([f, [, ver]]) => ver > from && f !== 'auth.userId')
      .map(([field, [value, version]]) => ({ field, value, version, updated_at: new Date(this.clock + version * 1000).toISOString() }))
      .sort((a, b) => a.version - b.version || (a.field < b.field ? -1 : 1));
    return { changes, cursor: this.s.version, history: this.token(), reset, lastSyncedAt: new Date().toISOString() };
  }

  // state_full(user).
  full() {
    const it = this.items();
    const out = {};
    for (const [f, [value]] of Object.entries(it)) {
      const [sec, k] = f.split('.');
      (out[sec] ??= {})[k] = value;
    }
    if (out.organization.id === null) out.organization = null;
    out._meta = { version: this.s.version, history: this.token(), lastSyncedAt: new Date().toISOString() };
    return out;
  }

  // ---- failover ----
  snapshot() {
    return clone(this.s);
  }

  // A failover to a standby that had only `snap` (or a restore to that
  // point): a new timeline forks where `snap` was.
  restore(snap) {
    this.s = clone(snap);
    this.s.tli = ++this.maxTli;
    this.parents.set(this.s.tli, { parent: snap.tli, fork: snap.lsn });
  }
}
