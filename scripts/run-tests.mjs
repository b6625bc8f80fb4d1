#!/usr/bin/env node
// Runs every compiled test file under dist/test with node:test. Node 20 has no glob support in
// `node --test`, so the files are found here. Arguments narrow the run: `npm test -- rpc config`
// runs only files whose path contains one of the words.
// STRATA_TEST_CONCURRENCY sets how many files run at once (default: 2, this machine's cores).
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const testRoot = join(root, 'dist', 'test');

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2).filter((a) => !a.startsWith('-'));
let files = find(testRoot).sort();
if (filters.length > 0) files = files.filter((f) => filters.some((w) => relative(testRoot, f).includes(w)));
if (files.length === 0) {
  console.error(`no test files matched ${filters.join(' ') || '(all)'} under ${testRoot}`);
  process.exit(1);
}
const concurrency = process.env.STRATA_TEST_CONCURRENCY ?? '2';
const args = ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', ...files];
const child = spawn(process.execPath, args, { stdio: 'inherit', env: { ...process.env, STRATA_TEST: '1' } });
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
