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
 *   answers agree and every image matches (see `similar`).
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
  images: readonly DedupImage[] | null;
}

export function comparableAnswer(answer: string): string {
  return answer.replace(/\s+/g, "").toLowerCase();
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
 * cannot read the numbers, answers can.
 */
export function similar(settings: DedupSettings, a: DedupFeatures, b: DedupFeatures): boolean {
  const perms = settings.minhashPermutations;
  return (
    estimateJaccard(a.sig, 0, b.sig, 0, perms) >= settings.nearDuplicateThreshold &&
    a.answer === b.answer &&
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

export function writeRow(buf: Buffer, at: number, row: BandRow): void {
  buf.writeUInt32LE(row.key, at);
  buf.writeUInt32LE(row.band, at + 4);
  buf.writeDoubleLE(row.order, at + 8);
  buf.writeUInt32LE(row.tagA, at + 16);
  buf.writeUInt32LE(row.tagB, at + 20);
}

export function readRow(buf: Buffer, at: number): BandRow {
  return {
    key: buf.readUInt32LE(at),
    band: buf.readUInt32LE(at + 4),
    order: buf.readDoubleLE(at + 8),
    tagA: buf.readUInt32LE(at + 16),
    tagB: buf.readUInt32LE(at + 20),
  };
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

function compareRows(x: BandRow, y: BandRow): number {
  return x.band - y.band || x.key - y.key || x.order - y.order;
}

/**
 * The candidate pairs of one partition's rows (any order in; sorted here), each pair once.
 * Exact rows pair every later copy of an id with its first; band rows follow the bucket rule.
 */
export function partitionPairs(rows: BandRow[]): CandidatePair[] {
  rows.sort(compareRows);
  const out: CandidatePair[] = [];
  let start = 0;
  while (start < rows.length) {
    let end = start + 1;
    while (end < rows.length && rows[end]!.band === rows[start]!.band && rows[end]!.key === rows[start]!.key)
      end++;
    bucketPairs(rows, start, end, out);
    start = end;
  }
  out.sort((x, y) => x.a - y.a || x.b - y.b || Number(y.exact) - Number(x.exact));
  const unique: CandidatePair[] = [];
  for (const p of out) {
    const last = unique[unique.length - 1];
    if (last && last.a === p.a && last.b === p.b) continue;
    unique.push(p);
  }
  return unique;
}

function bucketPairs(rows: BandRow[], start: number, end: number, out: CandidatePair[]): void {
  if (end - start < 2) return;
  const exact = rows[start]!.band === EXACT_BAND;
  // The first member with each id tag; later members with a seen tag are exact copies.
  const firstOf = new Map<string, number>();
  const reps: number[] = [];
  for (let i = start; i < end; i++) {
    const r = rows[i]!;
    const tag = `${r.tagA}:${r.tagB}`;
    const first = firstOf.get(tag);
    if (first !== undefined) {
      if (exact) out.push({ a: first, b: r.order, exact: true });
      continue;
    }
    firstOf.set(tag, r.order);
    if (exact) continue;
    for (const rep of reps) out.push({ a: rep, b: r.order, exact: false });
    if (reps.length < REPS_PER_BUCKET) reps.push(r.order);
  }
}
