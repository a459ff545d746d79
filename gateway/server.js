// roastr_state reference gateway: relays the extension's notifications to
// Socket.IO rooms "user:<id>", authorized by the database, with catch-up
// through state_sync.  Configuration comes from the environment; see
// README.md.  Usage: JWT_SECRET=... PGHOST=... node server.js
import { loadConfig } from './lib/config.js';
import { createLogger, errFields } from './lib/log.js';
import { createGateway } from './lib/gateway.js';

let cfg;
try {
  cfg = loadConfig();
} catch (err) {
  process.stderr.write(`gateway: ${err.message}\n`);
  process.exit(2);
}
const log = createLogger(cfg.logLevel);
const gw = createGateway(cfg, log);
process.on('unhandledRejection', (err) => log.error('unhandled rejection', errFields(err)));

async function stop(signal) {
  log.info('shutting down', { signal });
  setTimeout(() => {
    log.error('shutdown timed out');
    process.exit(1);
  }, 10000).unref();
  await gw.close();
  log.info('stopped');
  process.exit(0);
}
process.once('SIGTERM', () => stop('SIGTERM'));
process.once('SIGINT', () => stop('SIGINT'));

await gw.listen();
