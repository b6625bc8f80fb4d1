/**
 * MurmurHash3 (x86, 32-bit), written here so the ring places keys identically on every node and
 * across versions: the hash is part of the cluster's wire contract (two nodes that disagree on
 * a key's hash disagree on its owner). Keys hash as their UTF-8 bytes, so a key written over
 * HTTP (a JS string) and the same key over RESP (raw bytes) land on the same node.
 */

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** The murmur3 finaliser: a fast, well-mixing bijection on 32-bit integers. */
export function fmix32(input: number): number {
  let h = input;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mixK(k: number): number {
  let x = Math.imul(k, C1);
  x = (x << 15) | (x >>> 17);
  return Math.imul(x, C2);
}

function mixH(h: number, k: number): number {
  let x = h ^ mixK(k);
  x = (x << 13) | (x >>> 19);
  return (Math.imul(x, 5) + 0xe6546b64) | 0;
}

/** murmur3_x86_32 over `buf[start, end)`. */
export function murmur3Bytes(buf: Uint8Array, start = 0, end = buf.length, seed = 0): number {
  let h = seed | 0;
  const n = end - start;
  let i = start;
  const blocksEnd = start + (n & ~3);
  for (; i < blocksEnd; i += 4) {
    const k =
      (buf[i] as number) |
      ((buf[i + 1] as number) << 8) |
      ((buf[i + 2] as number) << 16) |
      ((buf[i + 3] as number) << 24);
    h = mixH(h, k);
  }
  const tail = n & 3;
  if (tail !== 0) {
    let k = buf[i] as number;
    if (tail > 1) k ^= (buf[i + 1] as number) << 8;
    if (tail > 2) k ^= (buf[i + 2] as number) << 16;
    h ^= mixK(k);
  }
  return fmix32(h ^ n);
}

/**
 * murmur3_x86_32 of a string's UTF-8 bytes. ASCII strings (the common case for cache keys) are
 * hashed from their code units without allocating; anything else is encoded first.
 */
export function murmur3String(text: string, seed = 0): number {
  const n = text.length;
  for (let j = 0; j < n; j++) {
    if (text.charCodeAt(j) >= 0x80) return murmur3Bytes(Buffer.from(text, 'utf8'), 0, undefined, seed);
  }
  let h = seed | 0;
  let i = 0;
  const blocksEnd = n & ~3;
  for (; i < blocksEnd; i += 4) {
    const k =
      text.charCodeAt(i) |
      (text.charCodeAt(i + 1) << 8) |
      (text.charCodeAt(i + 2) << 16) |
      (text.charCodeAt(i + 3) << 24);
    h = mixH(h, k);
  }
  const tail = n & 3;
  if (tail !== 0) {
    let k = text.charCodeAt(i);
    if (tail > 1) k ^= text.charCodeAt(i + 1) << 8;
    if (tail > 2) k ^= text.charCodeAt(i + 2) << 16;
    h ^= mixK(k);
  }
  return fmix32(h ^ n);
}
