// Does the randomized test catch a broken client?  Each mutation below
// breaks one rule of src/client.js in a copy of the package; the randomized
// test must then fail.  `npm run test:mutations` (not part of `npm test`).
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const MUTATIONS = [
  {
    name: 'rebase: pending writes shown under the server state instead of on top',
    from: '    for (const a of awaiting) Object.assign(values, a.changes);\n    for (const w of queue) Object.assign(values, w.changes);\n',
    to: '    for (const a of awaiting) Object.assign(values, a.changes);\n    for (const w of queue) Object.assign(values, w.changes);\n    Object.assign(values, server.values);\n',
  },
  {
    name: 'rebase: a server change to a pending field is not a conflict (the write silently wins)',
    from: '        raiseConflict(f, i, w.changes[f], server.values[f], v, true);',
    to: '        continue;',
  },
  {
    name: 'rebase: a confirmed write is dropped before the cursor reaches its version',
    from: '    if (res.version > server.cursor) {',
    to: '    if (false) {',
  },
  {
    name: 'sync: a state_update is merged whatever its version',
    from: '    if (version !== server.cursor + 1 || !covers(data, fields)',
    to: '    if (!covers(data, fields)',
  },
  {
    name: 'sync: a state_update is merged though a field it names has no value (no pull)',
    from: '    if (version !== server.cursor + 1 || !covers(data, fields)) {',
    to: '    if (version !== server.cursor + 1) {',
  },
  {
    name: 'history: never sent (bare cursors, as before 0.5.0)',
    edits: [
      ['    history: () => (hydrated && server.cursor > 0 ? server.history : null),', '    history: () => null,'],
      ['    const fromHistory = since > 0 ? server.history : null;', '    const fromHistory = null;'],
    ],
  },
  {
    name: 'history: an answer of another line is merged, whatever cursor the server found',
    from: '      if (fromHistory !== server.history || since !== server.cursor) {',
    to: '      if (false) {',
  },
];

const iterations = process.env.ROASTR_ITERATIONS ?? '300';
let caught = 0;
for (const m of MUTATIONS) {
  const dir = mkdtempSync(join(tmpdir(), 'roastr-mutation-'));
  cpSync(join(root, 'src'), join(dir, 'src'), { recursive: true });
  cpSync(join(root, 'test'), join(dir, 'test'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  const file = join(dir, 'src', 'client.js');
  let src = readFileSync(file, 'utf8');
  for (const [from, to] of m.edits ?? [[m.from, m.to]]) {
    if (!src.includes(from)) throw new Error(`mutation "${m.name}" no longer applies: update test/mutations.js`);
    src = src.replace(from, to);
  }
  writeFileSync(file, src);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--test', 'test/randomized.test.js'], {
    cwd: dir, encoding: 'utf8', env: { ...process.env, ROASTR_ITERATIONS: iterations },
  });
  rmSync(dir, { recursive: true, force: true });
  const out = `${r.stdout}${r.stderr}`;
  const failed = r.status !== 0;
  const why = (/seed \d+: [^\n]*/.exec(out) ?? ['(no failure)'])[0];
  console.log(`${failed ? 'caught ' : 'MISSED '} ${m.name}\n         ${why} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (failed) caught++;
}
console.log(`${caught} passed, ${MUTATIONS.length - caught} failed`);
process.exit(caught === MUTATIONS.length ? 0 : 1);
