// The Zustand store and the React hook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import React from 'react';
import { renderToString } from 'react-dom/server';
import { createStateClient } from '../src/client.js';
import { createRoastrStore } from '../src/zustand.js';
import { useRoastrState, RoastrProvider } from '../src/react.js';
import { ServerModel } from './support/model.js';
import { settle } from './support/sim.js';

function loopback(model) {
  const t = {
    settleDelayMs: 0,
    start(h) {
      t.h = h;
      h.onStatus({ online: true, writable: true, via: 'loopback' });
      h.onSync({ ...model.sync(0), since: 0 });
    },
    patch: async (req) => model.patch(req),
    sync: async (since) => model.sync(since),
    close() {},
  };
  return t;
}

test('createRoastrStore follows the client; unchanged sections keep their identity', async () => {
  const model = new ServerModel();
  const client = createStateClient({ transport: loopback(model) });
  await client.loaded;
  await settle();
  const store = createRoastrStore(client);
  assert.equal(store.getState().roasting.enabled, true);
  assert.equal(store.getState().status.ready, true);
  const usage = store.getState().usage;
  const seen = [];
  store.subscribe((s) => seen.push(s.roasting.enabled));
  store.getState().toggleRoasting(false);
  assert.equal(store.getState().roasting.enabled, false);
  assert.equal(store.getState().usage, usage);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(model.s.values['roasting.enabled'], false);
  store.getState().setUi({ theme: 'dark' });
  assert.equal(store.getState().ui.theme, 'dark');
  assert.ok(seen.includes(false));
  store.destroy();
  await client.close();
});

test('useRoastrState reads through a provider or the latest store', async () => {
  const model = new ServerModel();
  model.patch({ changes: { 'roasting.roast_level': 4 } });
  const client = createStateClient({ transport: loopback(model) });
  await client.loaded;
  await settle();
  const store = createRoastrStore(client);
  function Level() {
    const level = useRoastrState((s) => s.roasting.roast_level);
    const plan = useRoastrState((s) => s.subscription.plan);
    return React.createElement('span', null, `${plan}:${level}`);
  }
  assert.equal(renderToString(React.createElement(RoastrProvider, { store }, React.createElement(Level))), '<span>free:4</span>');
  assert.equal(renderToString(React.createElement(Level)), '<span>free:4</span>');
  store.destroy();
  await client.close();
});
