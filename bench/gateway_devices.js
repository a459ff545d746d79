// bench/gateway_devices.js — a process of simulated devices for
// bench/gateway_scale.js, which forks several of these so that the devices'
// side is not the bottleneck of the measurement.  Not meant to be run alone.
//
// Every device is a socket.io-client connection with its user's token, its
// cursor and its history token, as a real device holds them
// (gateway/README.md, "Protocol").  It records every move of its cursor —
// a state_update (one version) or a state_sync (any number) — with the time
// on this process's clock, performance.timeOrigin + performance.now(), which
// the parent relates to its own by a ping exchange.  A device whose gateway
// goes away (the connection closes without our asking) connects at once to
// its fallback URL with its cursor and history, and the time from the loss
// to the first state_sync there is recorded.
//
// Messages from the parent (process.send):
//   {cmd: 'init', urls, tokens, devices: [[d, user, cursor, urlIndex, fallbackIndex], ...]}
//       -> connects them all, 100 at a time -> {ev: 'ready', seconds}
//   {cmd: 'ping', t} -> {ev: 'pong', t, tw}
//   {cmd: 'cursors'} -> {ev: 'cursors', cursors: [[d, user, cursor], ...]}
//   {cmd: 'collect'} -> {ev: 'collected', moves: [user, from, to, t, kind, ...],
//                        reconnects: [[d, lost, back, tries, changes], ...], errors}
//   {cmd: 'close'}   -> closes every socket and exits
'use strict';
const path = require('node:path');
const { createRequire } = require('node:module');
const { performance } = require('node:perf_hooks');

const gwRequire = createRequire(path.join(__dirname, '..', 'gateway', 'package.json'));
const { io } = gwRequire('socket.io-client');

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let urls = [];
let tokens = [];
const devices = [];
const moves = [];      // flat: user, from, to, t, kind (0 state_update, 1 state_sync)
const reconnects = []; // [d, lost, back, tries, changes]
let errors = 0;
let closing = false;

function move(dev, to, t, kind) {
  if (to > dev.cursor) moves.push(dev.user, dev.cursor, to, t, kind);
  dev.cursor = to;
}

// Connect `dev` to urls[index]; resolves at its first state_sync.
function connect(dev, index) {
  return new Promise((resolve, reject) => {
    const s = io(urls[index], {
      auth: { token: tokens[dev.user], cursor: dev.cursor, history: dev.history },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
    });
    dev.socket = s;
    let first = true;
    s.on('state_update', (m) => {
      const t = now();
      if (m.history) dev.history = m.history;
      move(dev, m.version, t, 0);
    });
    s.on('state_sync', (m) => {
      const t = now();
      dev.history = m.history ?? dev.history;
      if (dev.lost !== null && first) {
        reconnects.push([dev.d, dev.lost, t, dev.tries, m.changes.length]);
        dev.lost = null;
      }
      // a reset may move the cursor down: then it is the server's
      if (m.reset) dev.cursor = m.cursor;
      else move(dev, m.cursor, t, 1);
      if (first) {
        first = false;
        resolve();
      }
    });
    s.once('connect_error', (err) => {
      s.close();
      reject(err);
    });
    s.on('disconnect', (reason) => {
      if (closing || reason === 'io client disconnect' || dev.fallback < 0) return;
      // the gateway went away: straight to the other one, with the cursor
      dev.lost = now();
      dev.tries = 0;
      failover(dev);
    });
  });
}

async function failover(dev) {
  for (;;) {
    dev.tries++;
    try {
      await connect(dev, dev.fallback);
      return;
    } catch {
      // the other gateway refused for now (e.g. database busy): retry soon
      if (closing) return;
      await sleep(Math.min(2000, 50 * 2 ** Math.min(dev.tries, 6)) * (0.5 + Math.random()));
    }
  }
}

async function init(msg) {
  urls = msg.urls;
  tokens = msg.tokens;
  for (const [d, user, cursor, urlIndex, fallback] of msg.devices) {
    devices.push({ d, user, cursor, history: null, urlIndex, fallback, socket: null, lost: null, tries: 0 });
  }
  const t0 = now();
  for (let i = 0; i < devices.length; i += 100) {
    await Promise.all(devices.slice(i, i + 100).map(async (dev) => {
      for (let tries = 1; ; tries++) {
        try {
          await connect(dev, dev.urlIndex);
          return;
        } catch (err) {
          errors++;
          if (tries >= 5) throw new Error(`device ${dev.d} could not connect: ${err.message}`);
          await sleep(200 * tries);
        }
      }
    }));
  }
  process.send({ ev: 'ready', seconds: (now() - t0) / 1000 });
}

process.on('message', (msg) => {
  switch (msg.cmd) {
    case 'init':
      init(msg).catch((err) => process.send({ ev: 'error', message: err.message }));
      break;
    case 'ping':
      process.send({ ev: 'pong', t: msg.t, tw: now() });
      break;
    case 'cursors':
      process.send({ ev: 'cursors', cursors: devices.map((dev) => [dev.d, dev.user, dev.cursor]) });
      break;
    case 'collect':
      process.send({ ev: 'collected', moves, reconnects, errors });
      break;
    case 'close':
      closing = true;
      for (const dev of devices) dev.socket?.close();
      setTimeout(() => process.exit(0), 200);
      break;
    default:
      break;
  }
});
process.on('disconnect', () => process.exit(0));
