// No container engine runs here, so the image is checked statically: every path the Dockerfile
// copies exists (or is built by its build stage), hadolint-style rules hold, the scripts pass
// `sh -n`/shellcheck, and the entrypoint dispatches as documented (run with a stand-in `strata`).
import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { STRATA_NODE_FLAGS } from '../../src/common/runtime.js';
import { requireTools } from '../helpers/ci.js';
import { run } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';
import { REPO_ROOT } from './helpers.js';

const DOCKER_DIR = join(REPO_ROOT, 'deploy', 'docker');

interface Instruction {
  op: string;
  args: string;
  line: number;
  stage: string;
}

/** Dockerfile instructions with continuations joined, comments dropped, each tagged with its stage. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let stage = '';
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (buf === '' && (line === '' || line.startsWith('#'))) return;
    if (buf === '') start = i + 1;
    if (line.startsWith('#')) return;
    buf += (buf === '' ? '' : ' ') + line.replace(/\\$/, '').trim();
    if (line.endsWith('\\')) return;
    const m = /^(\w+)\s+(.*)$/.exec(buf);
    assert.ok(m, `line ${start}: not an instruction: ${buf}`);
    const op = (m[1] ?? '').toUpperCase();
    const args = m[2] ?? '';
    if (op === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? '';
    out.push({ op, args, line: start, stage });
    buf = '';
  });
  return out;
}

const dockerfile = readFileSync(join(DOCKER_DIR, 'Dockerfile'), 'utf8');
const instructions = parseDockerfile(dockerfile);

function copies(stage: string): { from: string | undefined; sources: string[]; dest: string }[] {
  return instructions
    .filter((i) => i.op === 'COPY' && i.stage === stage)
    .map((i) => {
      const words = i.args.split(/\s+/);
      const from = words.find((w) => w.startsWith('--from='))?.slice('--from='.length);
      const paths = words.filter((w) => !w.startsWith('--'));
      return { from, sources: paths.slice(0, -1), dest: paths[paths.length - 1] ?? '' };
    });
}

test('every COPY source exists in the build context, or is produced by the build stage', () => {
  const stages = instructions.filter((i) => i.op === 'FROM').map((i) => i.stage);
  assert.deepEqual(stages, ['build', 'runtime']);
  for (const stage of stages) {
    for (const c of copies(stage)) {
      if (c.from === undefined) {
        for (const s of c.sources)
          assert.ok(existsSync(join(REPO_ROOT, s)), `${stage}: COPY ${s}: no such path`);
        continue;
      }
      assert.ok(stages.includes(c.from), `COPY --from=${c.from}: no such stage`);
      for (const s of c.sources) {
        // The build stage works in /src on a copy of the repository; what it yields is what the
        // same steps yield here: package.json, node_modules, and tsc's dist/src.
        const rel = s.replace(/^\/src\//, '');
        assert.ok(
          existsSync(join(REPO_ROOT, rel)),
          `COPY --from=${c.from} ${s}: the build does not produce ${rel}`,
        );
      }
    }
  }
  const buildInputs = copies('build').flatMap((c) => c.sources);
  for (const needed of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src']) {
    assert.ok(buildInputs.includes(needed), `build stage copies ${needed}`);
  }
  const build = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as {
    extends: string;
  };
  assert.equal(build.extends, './tsconfig.json', 'tsconfig.build.json needs only tsconfig.json beside it');
});

test('hadolint-style rules: pinned bases, lean apt layers, exec-form entrypoint, reproducible npm', () => {
  for (const i of instructions) {
    const where = `Dockerfile:${i.line}`;
    if (i.op === 'ARG' && /_IMAGE=/.test(i.args)) {
      const image = i.args.split('=')[1] ?? '';
      assert.match(image, /^[\w./-]+:[\w.-]+$/, `${where}: base image pinned to a tag (DL3006)`);
      assert.doesNotMatch(image, /:latest$/, `${where}: no :latest (DL3007)`);
    }
    if (i.op === 'RUN') {
      if (/apt-get (-\S+ )*install/.test(i.args)) {
        assert.match(
          i.args,
          /install -y --no-install-recommends/,
          `${where}: -y --no-install-recommends (DL3015)`,
        );
        assert.match(
          i.args,
          /rm -rf \/var\/lib\/apt\/lists\/\*/,
          `${where}: apt lists removed in the same layer (DL3009)`,
        );
      }
      if (/apt-get update/.test(i.args))
        assert.match(
          i.args,
          /apt-get update.*&&.*apt-get.*install/,
          `${where}: update with install (DL3059)`,
        );
      assert.doesNotMatch(i.args, /(^|&&|;)\s*cd\s/, `${where}: WORKDIR, not cd (DL3003)`);
      assert.doesNotMatch(i.args, /npm install\b/, `${where}: npm ci, not npm install`);
      assert.doesNotMatch(i.args, /\bsudo\b/, `${where}: no sudo (DL3004)`);
    }
    if (i.op === 'WORKDIR') assert.match(i.args, /^\//, `${where}: absolute WORKDIR (DL3000)`);
    assert.notEqual(i.op, 'ADD', `${where}: COPY, not ADD (DL3020)`);
    assert.notEqual(i.op, 'MAINTAINER', `${where}: deprecated (DL4000)`);
  }
  const froms = instructions.filter((i) => i.op === 'FROM');
  assert.ok(
    froms.every((f) => /^\$\{NODE_\w*IMAGE\}\s+AS\s+\w+$/.test(f.args)),
    'FROM uses the pinned ARGs',
  );
  const entry = instructions.filter((i) => i.op === 'ENTRYPOINT');
  assert.equal(entry.length, 1);
  assert.deepEqual(
    JSON.parse(entry[0]?.args ?? ''),
    ['/usr/bin/tini', '--', '/entrypoint.sh'],
    'exec form (DL3025)',
  );
  assert.equal(
    instructions.filter((i) => i.op === 'CMD').length,
    0,
    'no CMD: Fluid pods run without arguments',
  );
  const runtimeApt = instructions.find(
    (i) => i.stage === 'runtime' && i.op === 'RUN' && i.args.includes('apt-get'),
  );
  for (const pkg of ['fuse3', 'libfuse2', 'tini', 'bash', 'coreutils', 'util-linux']) {
    assert.match(runtimeApt?.args ?? '', new RegExp(`\\s${pkg}\\s`), `runtime installs ${pkg}`);
  }
  assert.match(dockerfile, /npm ci --ignore-scripts/);
  assert.match(dockerfile, /npm prune --omit=dev/);
  const ignore = readFileSync(join(DOCKER_DIR, 'Dockerfile.dockerignore'), 'utf8').split('\n');
  for (const p of ['.git', 'node_modules', 'dist']) assert.ok(ignore.includes(p), `context excludes ${p}`);
});

test('`strata` on PATH runs the CLI the image copies, with the node flags of src/common/runtime.ts', async () => {
  const wrapper = readFileSync(join(DOCKER_DIR, 'strata'), 'utf8');
  const exec = /^exec node (.*) (\S+) "\$@"$/m.exec(wrapper);
  assert.ok(exec, 'exec node <flags> <main.js> "$@"');
  assert.deepEqual(exec[1]?.split(' '), [...STRATA_NODE_FLAGS]);
  const copied = copies('runtime').find((c) => c.sources.includes('/src/dist/src'));
  const workdir = instructions.filter((i) => i.stage === 'runtime' && i.op === 'WORKDIR').pop()?.args;
  assert.equal(`${workdir}/${copied?.dest.replace(/^\.\//, '')}/cli/main.js`, exec[2]);
  assert.ok(existsSync(join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js')));
  const dests = copies('runtime').map((c) => c.dest);
  assert.ok(dests.includes('/usr/local/bin/strata') && dests.includes('/entrypoint.sh'));
  for (const f of ['strata', 'entrypoint.sh']) {
    assert.ok((statSync(join(DOCKER_DIR, f)).mode & 0o111) !== 0, `${f} is executable`);
    const r = await run(f === 'strata' ? 'sh' : 'bash', ['-n', join(DOCKER_DIR, f)]);
    assert.equal(r.code, 0, r.stderr);
  }
});

test('shellcheck passes on the image scripts', { skip: requireTools('shellcheck') }, async () => {
  const r = await run('shellcheck', [join(DOCKER_DIR, 'strata'), join(DOCKER_DIR, 'entrypoint.sh')]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

test('the entrypoint dispatches on the environment: thin, cache-runtime, or plain strata', async (t) => {
  const dir = tempDir(t, 'strata-entry-');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  // A stand-in `strata` that prints the arguments it was exec'd with.
  writeFileSync(join(bin, 'strata'), '#!/bin/sh\nfor a in "$@"; do printf "%s|" "$a"; done\n');
  chmodSync(join(bin, 'strata'), 0o755);
  const fluidDir = join(dir, 'etc-fluid');
  const base = { PATH: `${bin}:/usr/bin:/bin`, STRATA_FLUID_DIR: fluidDir };
  const entry = async (env: Record<string, string>, args: string[] = []) => {
    const r = await run(join(DOCKER_DIR, 'entrypoint.sh'), args, { env: { ...base, ...env } });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  assert.equal(await entry({}, ['master', '--conf', '/c.toml']), 'master|--conf|/c.toml|');
  assert.equal(await entry({}), '');
  assert.equal(await entry({ FLUID_RUNTIME_TYPE: 'thin' }), 'fluid|thin|');
  assert.equal(await entry({ FLUID_RUNTIME_TYPE: 'thin' }, ['--debug']), 'fluid|thin|--debug|');
  assert.equal(await entry({ FLUID_RUNTIME_COMPONENT_TYPE: 'worker' }), 'fluid|cache-runtime|');
  mkdirSync(join(fluidDir, 'config'), { recursive: true });
  writeFileSync(join(fluidDir, 'config', 'config.json'), '{}');
  assert.equal(await entry({}), `fluid|thin|--config|${fluidDir}/config/config.json|`);
  // The legacy CacheRuntime mounts a config.json too: the component type decides first.
  assert.equal(await entry({ FLUID_RUNTIME_COMPONENT_TYPE: 'master' }), 'fluid|cache-runtime|');
});
