/**
 * Reading what Fluid hands a pod: JSON files from its ConfigMap, secret files it mounts for
 * encrypted options. Every failure is a ConfigError naming the file or the field, never a stack.
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError } from '../common/errors.js';
import type { ConfigProblem } from '../common/errors.js';

/** Where Fluid mounts the Secrets that back encrypted options. */
export const FLUID_SECRETS_DIR = '/etc/fluid/secrets/';

/** Largest JSON file accepted: Fluid's configs are a few KiB; anything huge is not one. */
export const MAX_FLUID_JSON_BYTES = 4 * 1024 * 1024;

/** Reads a secret file's text; tests substitute their own. */
export type SecretReader = (path: string) => string;

function ioWords(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return err instanceof Error ? err.message : String(err);
}

/** Reads and parses a JSON file; problems name the file. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_FLUID_JSON_BYTES) {
      throw new ConfigError(
        [{ key: '(file)', message: `larger than ${MAX_FLUID_JSON_BYTES} bytes: not a Fluid configuration` }],
        path,
      );
    }
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError([{ key: '(file)', message: `cannot read ${path}: ${ioWords(err)}` }], path);
  }
  return parseJsonText(text, path);
}

export function parseJsonText(text: string, source: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ConfigError(
      [{ key: '(file)', message: `not valid JSON: ${err instanceof Error ? err.message : String(err)}` }],
      source,
    );
  }
}

/** Secret files hold the value as written; a trailing newline is an artefact of `--from-file`. */
export const fileSecretReader: SecretReader = (path) => readFileSync(path, 'utf8').replace(/\r?\n$/, '');

/** Reads one secret, turning a failure into a problem naming the option. */
export function readSecret(
  reader: SecretReader,
  path: string,
  where: string,
  problems: ConfigProblem[],
): string | undefined {
  try {
    return reader(path);
  } catch (err) {
    problems.push({
      key: where,
      message: `cannot read secret file ${path}: ${ioWords(err)} (is the Secret mounted?)`,
    });
    return undefined;
  }
}

/** Options whose value is a path under FLUID_SECRETS_DIR are encrypted options: read the file. */
export function resolveSecretOptions(
  options: Readonly<Record<string, string>>,
  where: string,
  reader: SecretReader,
  problems: ConfigProblem[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v.startsWith(FLUID_SECRETS_DIR)) {
      const s = readSecret(reader, v, `${where}.${k}`, problems);
      if (s !== undefined) out[k] = s;
    } else {
      out[k] = v;
    }
  }
  return out;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Zod issues as problems with JSON paths (`mounts[0].mountPoint`). */
export function zodProblems(error: z.ZodError, prefix = ''): ConfigProblem[] {
  return error.issues.map((issue) => {
    const key = formatPath(issue.path);
    const value = 'input' in issue ? issue.input : undefined;
    return {
      key: prefix === '' ? key : key === '(root)' ? prefix : `${prefix}.${key}`,
      message: issue.message,
      ...(value === undefined ? {} : { value }),
    };
  });
}
