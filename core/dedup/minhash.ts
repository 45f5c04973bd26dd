/**
 * MinHash signatures over character shingles of normalized text, and LSH band keys.
 * 32-bit arithmetic only (Math.imul), one pass over the text, no allocation per shingle.
 */

/** Text for shingling: lower case, letters and digits only, single spaces. */
export function shingleText(text: string): string {
  return text
    .normalize("NFKC")
    .toLowerCase()
    .replace(/<image>/g, " ")
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim();
}

/** murmur3's 32-bit finalizer: spreads the bits of a hash. */
export function fmix32(h: number): number {
  let x = h;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

export interface MinHasher {
  readonly permutations: number;
  readonly shingleSize: number;
  /** Writes the signature of `text` into `out` (length = permutations). Returns the shingle count. */
  signature(text: string, out: Uint32Array): number;
}

export function createMinHasher(permutations: number, shingleSize: number, seed = 0x9e3779b9): MinHasher {
  const a = new Uint32Array(permutations);
  const b = new Uint32Array(permutations);
  let s = seed >>> 0;
  for (let i = 0; i < permutations; i++) {
    s = fmix32(s + 0x6d2b79f5);
    a[i] = s | 1; // odd multipliers are bijections mod 2^32
    s = fmix32(s + 0x6d2b79f5);
    b[i] = s;
  }
  return {
    permutations,
    shingleSize,
    signature(raw: string, out: Uint32Array): number {
      const text = shingleText(raw);
      out.fill(0xffffffff);
      const n = Math.max(1, text.length - shingleSize + 1);
      for (let start = 0; start < n; start++) {
        // FNV-1a over the shingle's code units, then a finalizer.
        let h = 0x811c9dc5;
        const end = Math.min(text.length, start + shingleSize);
        for (let i = start; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
        h = fmix32(h);
        for (let p = 0; p < permutations; p++) {
          const v = (Math.imul(h, a[p]!) + b[p]!) >>> 0;
          if (v < out[p]!) out[p] = v;
        }
      }
      return n;
    },
  };
}

/** Estimated Jaccard similarity: the fraction of equal signature slots. */
export function estimateJaccard(
  x: Uint32Array,
  xOffset: number,
  y: Uint32Array,
  yOffset: number,
  length: number,
): number {
  let same = 0;
  for (let i = 0; i < length; i++) if (x[xOffset + i] === y[yOffset + i]) same++;
  return same / length;
}

/** The hash of band `band` (rows r) of a signature stored at `offset`. */
export function bandKey(sig: Uint32Array, offset: number, band: number, rows: number): number {
  let h = 0x811c9dc5 ^ band;
  const start = offset + band * rows;
  for (let i = start; i < start + rows; i++) h = fmix32(Math.imul(h ^ sig[i]!, 0x01000193));
  return h >>> 0;
}
