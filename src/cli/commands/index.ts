/**
 * Every `strata` subcommand, one file each. A command module exports `register(program)`.
 */
import type { Command } from 'commander';
import { register as checkConfig } from './check-config.js';
import { register as fluid } from './fluid.js';
import { register as free } from './free.js';
import { register as fs } from './fs.js';
import { register as fuse } from './fuse.js';
import { register as kv } from './kv.js';
import { register as kvClient } from './kv-client.js';
import { register as load } from './load.js';
import { register as local } from './local.js';
import { register as master } from './master.js';
import { register as mount } from './mount.js';
import { register as node } from './node.js';
import { register as proxy } from './proxy.js';
import { register as report } from './report.js';
import { register as s3 } from './s3.js';
import { register as version } from './version.js';
import { register as worker } from './worker.js';

export const COMMANDS: readonly ((program: Command) => void)[] = [
  checkConfig,
  fluid,
  free,
  fs,
  fuse,
  kv,
  kvClient,
  load,
  local,
  master,
  mount,
  node,
  proxy,
  report,
  s3,
  version,
  worker,
];
