/**
 * Watching Fluid's ConfigMap in a ThinRuntime pod. Kubernetes updates a mounted ConfigMap by
 * swapping the `..data` symlink of its directory, so the directory is watched, not the file. When
 * the configuration derived from the new JSON differs from the one the mount runs with, `onChange`
 * is called once; a new JSON that does not parse is reported and ignored (the mount keeps serving).
 */
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { dirname } from 'node:path';

/** Kubernetes writes the new files, then swaps the symlink: settle before reading. */
export const CONFIG_SETTLE_MS = 500;

export interface ConfigWatchOptions {
  /** The JSON file Fluid mounted (its directory is watched). */
  source: string;
  /** The configuration the mount runs with. */
  current: string;
  /** Derives the configuration from the file as it is now; throws when it is invalid. */
  derive: () => string;
  onChange: () => void;
  onInvalid: (err: unknown) => void;
}

/** Starts watching; the watcher does not keep the process alive. Returns it for `close()`. */
export function watchFluidConfig(o: ConfigWatchOptions): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  let fired = false;
  const check = (): void => {
    timer = undefined;
    if (fired) return;
    let next: string;
    try {
      next = o.derive();
    } catch (err) {
      o.onInvalid(err);
      return;
    }
    if (next === o.current) return;
    fired = true;
    watcher.close();
    o.onChange();
  };
  const watcher = watch(dirname(o.source), { persistent: false }, () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(check, CONFIG_SETTLE_MS);
    timer.unref();
  });
  return watcher;
}
