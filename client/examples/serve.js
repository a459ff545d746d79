// The example page (two devices, the settings screen), no build step.
//
//   npm run example
//       with a stand-in gateway (in-memory server model) on the same port:
//       open http://127.0.0.1:8090/examples/
//   npm run example -- --gateway http://127.0.0.1:8080 --secret "$JWT_SECRET" --user <uuid>
//   npm run example -- --gateway http://127.0.0.1:8080 --token <jwt>
//       against a real gateway (node gateway/server.js) and its database:
//       serves the page alone and prints its URL with the gateway and a
//       token (signed here with the gateway's JWT_SECRET for --user, valid
//       12 h).  The gateway must admit the page's origin: start it with
//       CORS_ORIGIN=http://127.0.0.1:8090.  scripts/example.sh does all of
//       it (cluster, database, gateway, page).
//
//   npm run example -- --static
//       the page's files alone (prints the origin; the browser test).
//
// Options: --port N (default 8090, or PORT; 0 = any free port), --host H
// (default 127.0.0.1, or HOST).  A bare number is the port (as before).
import { parseArgs } from 'node:util';
import { createMockGateway } from './mock-gateway.js';
import { ROOT, staticServer } from './static.js';
import { signToken } from './jwt.js';

let opts;
let positionals;
try {
  ({ values: opts, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      gateway: { type: 'string' }, token: { type: 'string' }, secret: { type: 'string' }, user: { type: 'string' },
      port: { type: 'string' }, host: { type: 'string' }, static: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (err) {
  console.error(`example: ${err.message} (see the top of examples/serve.js)`);
  process.exit(2);
}
if (opts.help) {
  console.log('usage: npm run example [-- --gateway URL (--token JWT | --secret S --user UUID) | --static] [--port N] [--host H]');
  process.exit(0);
}
const port = Number(opts.port ?? positionals[0] ?? process.env.PORT ?? 8090);
const host = opts.host ?? process.env.HOST ?? '127.0.0.1';

let server;
let url;
if (opts.static) {
  server = staticServer(ROOT);
  url = await server.listen(port, host);
  console.log(`example: serving ${url}/examples/  (files only; Ctrl-C to stop)`);
} else if (!opts.gateway) {
  server = createMockGateway({ staticDir: ROOT });
  url = await server.listen(port, host);
  console.log(`example: ${url}/examples/  (stand-in gateway on the same port; Ctrl-C to stop)`);
} else {
  let token = opts.token;
  try {
    if (!token) token = signToken({ secret: opts.secret, sub: opts.user });
    new URL(opts.gateway);
  } catch (err) {
    console.error(`example: --gateway URL and --token, or --secret and --user, are needed (${err.message})`);
    process.exit(2);
  }
  server = staticServer(ROOT);
  url = await server.listen(port, host);
  const gw = opts.gateway.replace(/\/+$/, '');
  const q = new URLSearchParams({ gateway: gw, token });
  console.log(`example: open ${url}/examples/?${q}`);
  console.log(`         (page served on ${url}; the gateway ${gw} must be started with CORS_ORIGIN=${url}; Ctrl-C to stop)`);
}
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => server.close().then(() => process.exit(0)));
