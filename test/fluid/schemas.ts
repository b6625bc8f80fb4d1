/**
 * Validation of manifests without a cluster: built-in kinds against the Kubernetes OpenAPI
 * schemas that `kubernetes-models` compiles in, Fluid kinds against the OpenAPI schemas of Fluid's
 * own CRDs with ajv. The CRD check is strict about unknown fields (as `kubectl apply
 * --validate=strict` is), so a field in the wrong place is an error, not silently pruned.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';

export type Doc = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
};

export function parseDocs(text: string): Doc[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(d.errors.map((e) => e.message).join('; '));
      return d.toJS() as Doc | null;
    })
    .filter((d): d is Doc => d !== null);
}

export function describe(doc: Doc): string {
  return `${doc.kind ?? '?'}/${doc.metadata?.name ?? '?'}`;
}

interface ModelCtor {
  new (data: unknown): { validate(): void };
}

/** Errors of a built-in object against the Kubernetes schema ([] when valid). */
export async function validateBuiltin(doc: Doc): Promise<string[]> {
  const [group, version] = (doc.apiVersion ?? '').includes('/')
    ? (doc.apiVersion ?? '').split('/')
    : ['', doc.apiVersion ?? ''];
  const spec = group === '' ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`;
  let mod: Record<string, unknown>;
  try {
    mod = (await import(spec)) as Record<string, unknown>;
  } catch {
    return [`${describe(doc)}: unknown apiVersion ${doc.apiVersion}`];
  }
  const Model = mod[doc.kind ?? ''] as ModelCtor | undefined;
  if (Model === undefined) return [`${describe(doc)}: unknown kind in ${doc.apiVersion}`];
  try {
    new Model(doc).validate();
    return [];
  } catch (err) {
    return [`${describe(doc)}: ${err instanceof Error ? err.message : String(err)}`];
  }
}

type Schema = Record<string, unknown>;

/** Unknown fields become errors wherever the CRD lists properties and keeps no unknown fields. */
function strictify(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strictify);
  if (typeof node !== 'object' || node === null) return node;
  const s: Schema = {};
  for (const [k, v] of Object.entries(node)) s[k] = strictify(v);
  if (
    typeof s.properties === 'object' &&
    s.additionalProperties === undefined &&
    s['x-kubernetes-preserve-unknown-fields'] !== true
  ) {
    s.additionalProperties = false;
  }
  // int-or-string fields (quantities, ports) carry no type of their own.
  if (s['x-kubernetes-int-or-string'] === true && s.anyOf === undefined) {
    s.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  return s;
}

export class CrdValidator {
  readonly #byKind = new Map<string, ValidateFunction>();

  constructor(crdDir: string) {
    const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
    for (const f of readdirSync(crdDir).filter((n) => n.endsWith('.yaml'))) {
      for (const crd of parseDocs(readFileSync(join(crdDir, f), 'utf8'))) {
        const spec = crd.spec as {
          group: string;
          names: { kind: string };
          versions: { name: string; schema: { openAPIV3Schema: Schema } }[];
        };
        for (const v of spec.versions) {
          const schema = strictify(v.schema.openAPIV3Schema) as Schema;
          // metadata is ObjectMeta, validated by the API server, not by the CRD.
          const props = schema.properties as Record<string, Schema>;
          props.metadata = { type: 'object' };
          this.#byKind.set(`${spec.group}/${v.name}/${spec.names.kind}`, ajv.compile(schema));
        }
      }
    }
  }

  handles(doc: Doc): boolean {
    return this.#byKind.has(`${doc.apiVersion}/${doc.kind}`);
  }

  kinds(): string[] {
    return [...this.#byKind.keys()];
  }

  validate(doc: Doc): string[] {
    const fn = this.#byKind.get(`${doc.apiVersion}/${doc.kind}`);
    if (fn === undefined) return [`${describe(doc)}: no CRD for ${doc.apiVersion} ${doc.kind}`];
    if (fn(doc)) return [];
    return (fn.errors ?? []).map((e) => {
      const extra =
        e.keyword === 'additionalProperties'
          ? ` "${String((e.params as { additionalProperty: string }).additionalProperty)}"`
          : '';
      return `${describe(doc)}: ${e.instancePath || '/'} ${e.message ?? ''}${extra}`;
    });
  }
}

/**
 * The commented-out sections of a manifest, as a user gets them by uncommenting one: a header
 * line `# ==== NAME: … ====`, prose, then from a `# ---` line on, YAML behind "# " ("## " lines
 * are comments inside it). An uncommented line ends a section.
 */
export function commentedSections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  let yaml: string[] | undefined;
  const flush = (): void => {
    if (name !== undefined && yaml !== undefined) out.set(name, yaml.join('\n'));
    name = undefined;
    yaml = undefined;
  };
  for (const line of text.split('\n')) {
    const head = /^# ==== ([A-Z-]+)\b/.exec(line);
    if (head !== null) {
      flush();
      name = head[1];
    } else if (name === undefined) {
      continue;
    } else if (!line.startsWith('#')) {
      flush();
    } else if (yaml !== undefined) {
      yaml.push(line === '#' ? '' : line.replace(/^# /, ''));
    } else if (line === '# ---') {
      yaml = ['---'];
    }
  }
  flush();
  return out;
}
