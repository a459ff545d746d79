// At most n calls of fn() running at once; the rest wait in line, first come
// first served.  limit(fn) resolves or rejects as fn() does.
export function limiter(n) {
  let active = 0;
  const queue = [];
  const next = () => {
    if (active >= n || queue.length === 0) return;
    active++;
    const { fn, resolve, reject } = queue.shift();
    let p;
    try {
      p = Promise.resolve(fn());
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(resolve, reject).finally(() => {
      active--;
      next();
    });
  };
  const limit = (fn) => new Promise((resolve, reject) => {
    queue.push({ fn, resolve, reject });
    next();
  });
  limit.stats = () => ({ active, waiting: queue.length });
  return limit;
}
