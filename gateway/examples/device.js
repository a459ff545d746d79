// A device, to try the gateway by hand (and for a demo):
//
//   JWT_SECRET=… node examples/device.js http://127.0.0.1:8080 <user uuid> [cursor] [updates]
//
// Signs a one-hour HS256 token for the user with JWT_SECRET (a real device
// gets its token from Supabase Auth), connects with the cursor (default 0:
// the whole state), prints "ready" after the gateway's first state_sync and
// then one line per event.  Exits after `updates` state_update events when
// given, on SIGINT/SIGTERM, or when the gateway refuses or ends the connection.
import { io } from 'socket.io-client';
import { SignJWT } from 'jose';

const [url, sub, cursorArg = '0', updatesArg] = process.argv.slice(2);
if (!url || !sub || !process.env.JWT_SECRET) {
  console.error('usage: JWT_SECRET=… node examples/device.js <gateway url> <user uuid> [cursor] [updates]');
  process.exit(2);
}
let cursor = Number(cursorArg);
let updatesLeft = updatesArg === undefined ? Infinity : Number(updatesArg);
const token = await new SignJWT({ sub, role: 'authenticated' })
  .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('1h')
  .sign(Buffer.from(process.env.JWT_SECRET, 'utf8'));

// The history the cursor belongs to (0.5.0), kept with it: the gateway
// sends it on every state_sync and state_update, the device sends it back
// when it reconnects.
let history = null;
const socket = io(url, { transports: ['websocket'], auth: (cb) => cb({ token, cursor, history }) });
let ready = false;
socket.on('state_sync', ({ changes, cursor: c, history: h, reset }) => {
  const shown = changes.map((ch) => `${ch.field}=${JSON.stringify(ch.value)}`).join(' ');
  console.log(`state_sync  cursor ${cursor} -> ${c}${reset ? ' RESET (every field; replace the state)' : ''}${shown ? `: ${shown}` : ' (nothing new)'}`);
  cursor = c;
  history = h ?? null;
  if (!ready) {
    ready = true;
    console.log('ready');
  }
});
socket.on('state_update', ({ type, data, version, fields, history: h }) => {
  console.log(`state_update version ${version} ${JSON.stringify(type)} fields ${fields.join(',')} data ${JSON.stringify(data)}`);
  cursor = version;
  if (h) history = h;
  if (--updatesLeft <= 0) socket.close();
});
socket.on('gateway_error', ({ code }) => console.log(`gateway_error ${code}`));
socket.on('connect_error', (err) => {
  console.log(`refused: ${err.message} (${err.data?.code ?? 'no code'})`);
  process.exitCode = 1;
  socket.close();
});
socket.on('disconnect', (reason) => {
  if (reason === 'io server disconnect' || reason === 'io client disconnect') socket.close();
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => socket.close());
