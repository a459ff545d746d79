// The HTTP side: GET /healthz (the Socket.IO server takes /socket.io/).
function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// health() -> {status, ...}: 200 when status is 'ok', else 503.
export function createHttpHandler({ health }) {
  return function handle(req, res) {
    if (req.url === '/healthz' && req.method === 'GET') {
      const body = health();
      send(res, body.status === 'ok' ? 200 : 503, body);
      return;
    }
    send(res, 404, { error: 'not found' });
  };
}
