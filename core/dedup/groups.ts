/**
 * The near-duplicate grouping rule, shared by the in-memory finder and the fan-out over Lambdas so
 * both give the same groups:
 *
 * - Every item has a priority `order` (sources in configured order, rows in file order).
 * - Exact duplicates (same question id) join the earliest item with that id and take no part in the
 *   LSH buckets (their signature is their twin's).
 * - In each LSH band, the members of one bucket are taken in order; each member is a candidate pair
 *   with the first REPS_PER_BUCKET members before it. That bounds work on huge buckets (templated
 *   questions) while any two near-duplicates still meet in one of the bands they share.
 * - A candidate pair is a near-duplicate when the estimated Jaccard reaches the threshold, the gold
 *   answers agree, the numbers and math symbols of the two questions are the same in the same order,
 *   and every image matches (see `similar`).
 * - Groups are the connected components of the confirmed pairs; each keeps its earliest member.
 *
 * Components do not depend on the order in which pairs are checked, so the fan-out may verify them
 * in any order and skip a pair whose two ends are already joined.
 */
import { createHash } from "node:crypto";
import { hammingHex } from "../images/index.ts";
import { estimateJaccard, fmix32 } from "./minhash.ts";

export interface DedupSettings {
  nearDuplicateThreshold: number;
  minhashPermutations: number;
  lshBands: number;
  shingleSize: number;
  imageHashMaxDistance: number;
}

export interface DedupImage {
  sha256: string;
  dhash: string | null;
}

/** Candidate members checked per LSH bucket. */
export const REPS_PER_BUCKET = 4;

/** What the pair check needs of one item. */
export interface DedupFeatures {
  sig: Uint32Array;
  /** The gold answer, whitespace removed and lower-cased (`comparableAnswer`). */
  answer: string;
  /** Hash of the question's numbers and math symbols in order (`mathTokensHash`). */
  math: number;
  images: readonly DedupImage[] | null;
}

export function comparableAnswer(answer: string): string {
  return answer.replace(/\s+/g, "").toLowerCase();
}

/**
 * The numbers (with a sign that reads as one) and math symbols of a text, in order. Templated
 * questions share every word and differ only here ("last digit of 692 * 177 + 1859" vs "... + 7209"),
 * and by chance their gold answers can agree too.
 */
export function mathTokens(text: string): string[] {
  return (
    text
      .normalize("NFKC")
      .match(/(?<![\p{L}\p{N}_.])-?\d+(?:[.,]\d+)*|[+*/^=<>≤≥≠×÷√π∞∑∏∫%]/gu)
      ?.map((t) => t.replace(/,(?=\d{3}\b)/g, "")) ?? []
  );
}

/** 32-bit FNV-1a of `mathTokens`: what the pair check compares (4 bytes an item, not a string). */
export function mathTokensHash(text: string): number {
  let h = 0x811c9dc5;
  for (const ch of mathTokens(text).join(" ")) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function imagesMatch(x: DedupFeatures["images"], y: DedupFeatures["images"], maxDistance: number): boolean {
  if (!x || !y) return !x && !y;
  if (x.length !== y.length) return false;
  for (let k = 0; k < x.length; k++) {
    const p = x[k]!;
    const q = y[k]!;
    if (p.sha256 === q.sha256) continue;
    if (!p.dhash || !q.dhash) return false;
    if (hammingHex(p.dhash, q.dhash) > maxDistance) return false;
  }
  return true;
}

/**
 * Whether a candidate pair is a near-duplicate. Same wording over the same-looking figure with
 * another gold answer is another question (a diagram whose numbers changed): perceptual hashes
 * cannot read the numbers, answers can. Same wording with other numbers is another question too,
 * even when the answers agree by chance.
 */
export function similar(settings: DedupSettings, a: DedupFeatures, b: DedupFeatures): boolean {
  const perms = settings.minhashPermutations;
  return (
    estimateJaccard(a.sig, 0, b.sig, 0, perms) >= settings.nearDuplicateThreshold &&
    a.answer === b.answer &&
    a.math === b.math &&
    imagesMatch(a.images, b.images, settings.imageHashMaxDistance)
  );
}

/** Union-find over 0..n-1 where a smaller index is earlier: a group's root is its earliest member. */
export class UnionFind {
  private readonly parent: Int32Array;

  constructor(n: number) {
    this.parent = new Int32Array(n);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }

  find(x: number): number {
    let r = x;
    while (this.parent[r] !== r) r = this.parent[r]!;
    let c = x;
    while (this.parent[c] !== r) {
      const next = this.parent[c]!;
      this.parent[c] = r;
      c = next;
    }
    return r;
  }

  /** Joins two groups; false when they were one already. */
  union(a: number, b: number): boolean {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return false;
    if (ra < rb) this.parent[rb] = ra;
    else this.parent[ra] = rb;
    return true;
  }
}

// ---------------------------------------------------------------- the fan-out's band rows

/** The band number of the rows that carry a question id (exact duplicates). */
export const EXACT_BAND = 0xffffffff;

/** 96 bits of a question id: `key` buckets exact rows, `tagA`/`tagB` tell ids apart inside a bucket. */
export function idBits(id: string): { key: number; tagA: number; tagB: number } {
  const hex = /^[0-9a-f]{24}/.test(id) ? id : createHash("sha256").update(id).digest("hex");
  return {
    tagA: Number.parseInt(hex.slice(0, 8), 16),
    tagB: Number.parseInt(hex.slice(8, 16), 16),
    key: Number.parseInt(hex.slice(16, 24), 16),
  };
}

/**
 * One band row: (band, bucket key, order, id tag), 24 bytes little-endian. `order` is below 2^53.
 * Exact rows use EXACT_BAND and the id's own key.
 */
export const ROW_BYTES = 24;

export interface BandRow {
  band: number;
  key: number;
  order: number;
  tagA: number;
  tagB: number;
}

export function writeRow(
  buf: Buffer,
  at: number,
  band: number,
  key: number,
  order: number,
  tagA: number,
  tagB: number,
): void {
  buf.writeUInt32LE(key, at);
  buf.writeUInt32LE(band, at + 4);
  buf.writeDoubleLE(order, at + 8);
  buf.writeUInt32LE(tagA, at + 16);
  buf.writeUInt32LE(tagB, at + 20);
}

/** Band rows as columns (a partition holds millions: no object per row). */
export interface RowColumns {
  length: number;
  band: Uint32Array;
  key: Uint32Array;
  order: Float64Array;
  tagA: Uint32Array;
  tagB: Uint32Array;
}

/** Decodes concatenated row bytes (each chunk a whole number of rows) into columns. */
export function decodeRows(chunks: readonly Buffer[]): RowColumns {
  const length = chunks.reduce((n, c) => n + c.length / ROW_BYTES, 0);
  const cols: RowColumns = {
    length,
    band: new Uint32Array(length),
    key: new Uint32Array(length),
    order: new Float64Array(length),
    tagA: new Uint32Array(length),
    tagB: new Uint32Array(length),
  };
  let i = 0;
  for (const c of chunks)
    for (let at = 0; at < c.length; at += ROW_BYTES, i++) {
      cols.key[i] = c.readUInt32LE(at);
      cols.band[i] = c.readUInt32LE(at + 4);
      cols.order[i] = c.readDoubleLE(at + 8);
      cols.tagA[i] = c.readUInt32LE(at + 16);
      cols.tagB[i] = c.readUInt32LE(at + 20);
    }
  return cols;
}

/** Columns from row objects (tests and small inputs). */
export function rowColumns(rows: readonly BandRow[]): RowColumns {
  const buf = Buffer.alloc(rows.length * ROW_BYTES);
  rows.forEach((r, i) => {
    writeRow(buf, i * ROW_BYTES, r.band, r.key, r.order, r.tagA, r.tagB);
  });
  return decodeRows([buf]);
}

/** The partition a bucket's rows go to: every row of one bucket lands in the same partition. */
export function partitionOf(band: number, key: number, partitions: number): number {
  return fmix32(key ^ Math.imul(band + 1, 0x9e3779b9)) % partitions;
}

/** A candidate pair; `exact` pairs need no check (same id). `a` is the earlier item. */
export interface CandidatePair {
  a: number;
  b: number;
  exact: boolean;
}

/** Candidate pairs as (a, b, exact ? 1 : 0) triples: the pairs file's layout (24 bytes a pair). */
export class PairList {
  private data = new Float64Array(3 * 1024);
  length = 0;

  push(a: number, b: number, exact: boolean): void {
    if ((this.length + 1) * 3 > this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    const at = this.length * 3;
    this.data[at] = a;
    this.data[at + 1] = b;
    this.data[at + 2] = exact ? 1 : 0;
    this.length += 1;
  }

  get(i: number): CandidatePair {
    return { a: this.data[i * 3]!, b: this.data[i * 3 + 1]!, exact: this.data[i * 3 + 2] === 1 };
  }

  /** Sorted by (a, b), each pair once (an exact pair wins over a band pair of the same two). */
  unique(): PairList {
    const idx = new Uint32Array(this.length);
    for (let i = 0; i < idx.length; i++) idx[i] = i;
    const d = this.data;
    idx.sort(
      (x, y) => d[x * 3]! - d[y * 3]! || d[x * 3 + 1]! - d[y * 3 + 1]! || d[y * 3 + 2]! - d[x * 3 + 2]!,
    );
    const out = new PairList();
    let lastA = -1;
    let lastB = -1;
    for (const i of idx) {
      const a = d[i * 3]!;
      const b = d[i * 3 + 1]!;
      if (a === lastA && b === lastB) continue;
      out.push(a, b, d[i * 3 + 2] === 1);
      lastA = a;
      lastB = b;
    }
    return out;
  }

  bytes(): Buffer {
    return Buffer.from(this.data.buffer, 0, this.length * 3 * 8);
  }

  static fromBytes(bytes: Buffer): PairList {
    const list = new PairList();
    const copy = new Uint8Array(bytes.length);
    copy.set(bytes);
    list.data = new Float64Array(copy.buffer, 0, Math.floor(bytes.length / 24) * 3);
    list.length = list.data.length / 3;
    return list;
  }

  toArray(): CandidatePair[] {
    return Array.from({ length: this.length }, (_, i) => this.get(i));
  }
}

/**
 * The candidate pairs of one partition's rows (any order in), each pair once. Exact rows pair every
 * later copy of an id with its first; band rows follow the bucket rule.
 */
export function partitionPairs(rows: RowColumns): PairList {
  const { band, key, order } = rows;
  const idx = new Uint32Array(rows.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  idx.sort((x, y) => band[x]! - band[y]! || key[x]! - key[y]! || order[x]! - order[y]!);
  const out = new PairList();
  let start = 0;
  while (start < idx.length) {
    const s = idx[start]!;
    let end = start + 1;
    while (end < idx.length && band[idx[end]!] === band[s] && key[idx[end]!] === key[s]) end++;
    if (end - start > 1) bucketPairs(rows, idx.subarray(start, end), out);
    start = end;
  }
  return out.unique();
}

function bucketPairs(rows: RowColumns, members: Uint32Array, out: PairList): void {
  const exact = rows.band[members[0]!] === EXACT_BAND;
  // The first member with each id tag; later members with a seen tag are exact copies.
  const firstOf = new Map<number, { tagB: number; order: number }[]>();
  const reps: number[] = [];
  for (const m of members) {
    const order = rows.order[m]!;
    const tagB = rows.tagB[m]!;
    const same = firstOf.get(rows.tagA[m]!);
    const first = same?.find((f) => f.tagB === tagB);
    if (first) {
      if (exact) out.push(first.order, order, true);
      continue;
    }
    if (same) same.push({ tagB, order });
    else firstOf.set(rows.tagA[m]!, [{ tagB, order }]);
    if (exact) continue;
    for (const rep of reps) out.push(rep, order, false);
    if (reps.length < REPS_PER_BUCKET) reps.push(order);
  }
}
