/**
 * Kubernetes resource quantities ("2Gi", "500M", "1.5Gi", "1e9") as Fluid writes tiered-store
 * quotas. Kubernetes means powers of ten by "M"/"G" and powers of two by "Mi"/"Gi"; Strata's own
 * size strings treat both as powers of two, so a quota is converted here, exactly, to bytes.
 */

const BINARY: Readonly<Record<string, number>> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const DECIMAL: Readonly<Record<string, number>> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

export const QUANTITY_HELP = 'a Kubernetes quantity such as "2Gi", "500Mi", "10G" or "1073741824"';

/**
 * Bytes of a quantity, rounded up to a whole byte as Kubernetes does; undefined when the text is
 * not a quantity, is negative, or does not fit a safe integer.
 */
export function parseQuantityBytes(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|([kMGTPE]?)|[eE]([+-]?\d+))\s*$/.exec(text);
  if (m === null) return undefined;
  const value = Number(m[1]);
  let scale: number;
  if (m[2] !== undefined) scale = BINARY[m[2]] ?? 1;
  else if (m[4] !== undefined) scale = 10 ** Number(m[4]);
  else scale = DECIMAL[m[3] ?? ''] ?? 1;
  const bytes = Math.ceil(value * scale);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

const RENDER_UNITS: readonly [string, number][] = [
  ['PiB', 2 ** 50],
  ['TiB', 2 ** 40],
  ['GiB', 2 ** 30],
  ['MiB', 2 ** 20],
  ['KiB', 2 ** 10],
];

/** A byte count as Strata's size grammar reads it back exactly: "2GiB" when whole, else bytes. */
export function renderBytes(bytes: number): string {
  for (const [unit, scale] of RENDER_UNITS) {
    if (bytes >= scale && bytes % scale === 0) return `${bytes / scale}${unit}`;
  }
  return String(bytes);
}
