#!/usr/bin/env node
// Runs compiled benchmarks: `npm run bench -- rpc` runs dist/bench/rpc/main.js. Names are the
// folders under bench/ (lib is shared code, not a benchmark); arguments starting with "--" are
// passed on to every benchmark. Each benchmark starts its own reference (redis, iperf3, fio…).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const benchRoot = join(root, 'dist', 'bench');
const available = existsSync(benchRoot)
  ? readdirSync(benchRoot).filter((n) => existsSync(join(benchRoot, n, 'main.js')))
  : [];
const names = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const passOn = process.argv.slice(2).filter((a) => a.startsWith('--'));

if (names.length === 0) {
  console.error(
    `usage: npm run bench -- <name>... [--option=value]\navailable: ${available.join(', ') || '(none built)'}`,
  );
  process.exit(2);
}
const unknown = names.filter((n) => !available.includes(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark ${unknown.join(', ')} (available: ${available.join(', ') || 'none'})`);
  process.exit(2);
}
let failed = false;
for (const name of names) {
  console.log(`== bench ${name}`);
  const r = spawnSync(process.execPath, [join(benchRoot, name, 'main.js'), ...passOn], { stdio: 'inherit' });
  if (r.status !== 0) {
    console.error(`bench ${name} failed (exit ${r.status ?? r.signal})`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
