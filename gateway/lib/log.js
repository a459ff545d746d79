// Structured logs: one JSON object per line on stdout.  Callers pass ids,
// counts and error codes only — never a token, a claim set or a payload.
export const LEVELS = Object.freeze({ debug: 10, info: 20, warn: 30, error: 40 });

export function createLogger(level = 'info') {
  const min = LEVELS[level] ?? LEVELS.info;
  const write = (lvl) => (msg, fields = {}) => {
    if (LEVELS[lvl] < min) return;
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }) + '\n');
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

// What may be logged about an error: its class, SQLSTATE and message.
// (pg's messages never carry a query's parameters.)
export function errFields(err) {
  return { err: err?.message, code: err?.code };
}
