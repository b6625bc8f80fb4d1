/**
 * A cluster configuration being assembled from Fluid's inputs, in file form (the key names of
 * `strata-cluster.toml`), rendered to TOML and checked by the same loader every role uses, so
 * a file this module writes is one the role accepts.
 */
import { stringify } from 'smol-toml';
import { parseConfigText } from '../common/config/index.js';
import type { ClusterConfig } from '../common/config/index.js';
import type { ConfigProblem } from '../common/errors.js';
import { closest } from '../common/suggest.js';
import { allConfigKeys, coerceOption, resolveOptionKey } from './config-keys.js';
import type { OptionScope } from './config-keys.js';

type Raw = Record<string, unknown>;

export class ConfigDraft {
  readonly #raw: Raw = {};

  set(path: readonly string[], value: unknown): void {
    let node = this.#raw;
    for (const k of path.slice(0, -1)) {
      const next = node[k];
      if (typeof next !== 'object' || next === null || Array.isArray(next)) node[k] = {};
      node = node[k] as Raw;
    }
    const last = path[path.length - 1];
    if (last !== undefined) node[last] = value;
  }

  get(path: readonly string[]): unknown {
    let node: unknown = this.#raw;
    for (const k of path) {
      if (typeof node !== 'object' || node === null) return undefined;
      node = (node as Raw)[k];
    }
    return node;
  }

  /** A deep copy of the file-form object. */
  toObject(): Raw {
    return structuredClone(this.#raw);
  }

  /**
   * Applies a Fluid option map (string values) on top of what is set. Keys that name no
   * configuration key are returned for the caller to pass on (FUSE mount options) or warn about;
   * values of the wrong type are problems naming `where.key`.
   */
  applyOptions(
    scope: OptionScope,
    options: Readonly<Record<string, string>>,
    where: string,
    problems: ConfigProblem[],
  ): { unknown: string[] } {
    const unknown: string[] = [];
    for (const [key, text] of Object.entries(options)) {
      const hit = resolveOptionKey(scope, key);
      if (hit === undefined) {
        unknown.push(key);
        continue;
      }
      const c = coerceOption(hit.kind, text);
      if (c.ok) this.set(hit.path, c.value);
      else
        problems.push({
          key: `${where}.${key}`,
          message: `${hit.path.join('.')}: ${c.message}`,
          value: text,
        });
    }
    return { unknown };
  }
}

/** "did you mean" for an option that names no configuration key. */
export function unknownOptionWarning(where: string, key: string): string {
  const hint = closest(
    key.replaceAll('-', '_'),
    allConfigKeys().map((k) => k.split('.').pop() ?? k),
  );
  return `${where}.${key}: not a Strata configuration key (ignored)${hint === undefined ? '' : `; did you mean ${hint}?`}`;
}

/** Renders the draft as TOML under a comment header. */
export function renderToml(draft: ConfigDraft, header: readonly string[]): string {
  const lines = header.map((l) => `# ${l}`.trimEnd());
  return `${lines.join('\n')}\n\n${stringify(draft.toObject()).trimEnd()}\n`;
}

/**
 * Parses rendered TOML with the roles' own loader (no environment overrides, so the result is
 * what the file alone says); a ConfigError names the TOML key that is wrong.
 */
export function verifyToml(text: string, label: string): ClusterConfig {
  return parseConfigText(text, label, { env: {} }).config;
}
