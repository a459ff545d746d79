// The hand-written declarations compile against a usage sample (tsc).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('types: src/*.d.ts check with tsc --strict', () => {
  const dir = fileURLToPath(new URL('./types/', import.meta.url));
  const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url));
  try {
    execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', stdio: 'pipe' });
  } catch (err) {
    assert.fail(`tsc:\n${err.stdout}${err.stderr}`);
  }
});
