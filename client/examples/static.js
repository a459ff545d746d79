// The example page's files, served as they are (no build step): the page
// (examples/), the package (src/) and the two browser modules its import
// map names (zustand's vanilla store, socket.io-client's ESM build), under
// the package's folder.  Used by serve.js (with the stand-in gateway, or
// alone next to a real gateway) and by the browser test.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css', '.json': 'application/json', '.map': 'application/json', '.png': 'image/png',
};
// What the page may load; nothing else of the folder is served.
const ALLOWED = ['examples/', 'src/', 'node_modules/zustand/', 'node_modules/socket.io-client/dist/'];

// A request handler: true when it answered (GET of an allowed file, or the
// redirect from / to /examples/), false to let the caller answer.
export function staticFiles(root = ROOT) {
  const base = path.resolve(root);
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/' || url.pathname === '/examples') {
      res.writeHead(302, { location: `/examples/${url.search}` });
      res.end();
      return true;
    }
    let rel;
    try {
      rel = decodeURIComponent(url.pathname.endsWith('/') ? `${url.pathname}index.html` : url.pathname).replace(/^\/+/, '');
    } catch {
      return false;
    }
    const file = path.resolve(base, rel);
    if (!file.startsWith(base + path.sep) || !ALLOWED.some((p) => path.relative(base, file).split(path.sep).join('/').startsWith(p))) return false;
    let buf;
    try {
      buf = fs.readFileSync(file);
    } catch {
      return false;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : buf);
    return true;
  };
}

// A server of those files alone (the page then talks to a real gateway,
// which must list this origin in CORS_ORIGIN).
export function staticServer(root = ROOT) {
  const files = staticFiles(root);
  const server = http.createServer((req, res) => {
    if (files(req, res)) return;
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found\n');
  });
  return {
    server,
    listen(port = 0, host = '127.0.0.1') {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve(`http://${host}:${server.address().port}`));
      });
    },
    close() {
      server.closeAllConnections?.();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
