// The example page with a stand-in gateway (in-memory server model):
//   npm ci && npm run example        then open http://127.0.0.1:8090/examples/
// Serves this package's folder as static files (the page imports ../src
// and two files from node_modules through an import map: no build step).
import { fileURLToPath } from 'node:url';
import { createMockGateway } from './mock-gateway.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const port = Number(process.argv[2] ?? process.env.PORT ?? 8090);
const gw = createMockGateway({ staticDir: root });
const url = await gw.listen(port, process.env.HOST ?? '127.0.0.1');
console.log(`example: ${url}/  (stand-in gateway on the same port; Ctrl-C to stop)`);
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => gw.close().then(() => process.exit(0)));
