/**
 * Question dedup: exact (by id), near-duplicate (MinHash + LSH over text shingles, confirmed by the
 * image perceptual hash so the same text over another image is kept), and benchmark
 * decontamination (word n-gram overlap).
 *
 * Near duplicates must also have the same gold answer (after whitespace and case): a figure whose
 * numbers changed looks the same to a perceptual hash but asks another question.
 *
 * Items are added in priority order (sources in configured order, rows in file order). Near-duplicate
 * candidates that verify are joined into groups; the earliest member of each group is kept and every
 * other member is dropped naming it. Memory: one signature per item (4 bytes x permutations) plus one
 * band's bucket map at a time, so a million questions fit in well under 2 GiB.
 */
import { hammingHex } from "../images/index.ts";
import { bandKey, createMinHasher, estimateJaccard, type MinHasher, shingleText } from "./minhash.ts";

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

export type DedupDecision =
  | { keep: true }
  | { keep: false; reason: "duplicate_question" | "near_duplicate" | "in_sft_set"; duplicateOf: string };

/** Representatives checked per LSH bucket: bounds work on huge buckets while keeping recall. */
const REPS_PER_BUCKET = 4;

export class NearDuplicateFinder {
  private readonly hasher: MinHasher;
  private readonly rows: number;
  private sigs: Uint32Array;
  private readonly ids: string[] = [];
  private readonly images: (DedupImage[] | null)[] = [];
  private readonly answers: string[] = [];
  private readonly reference: boolean[] = [];
  private readonly exact = new Map<string, number>();
  private exactOf: Int32Array = new Int32Array(1024);
  private parent: Int32Array = new Int32Array(0);
  private resolved = false;
  /** Verified candidate pairs (counted for stats). */
  pairsConfirmed = 0;
  pairsRejected = 0;

  constructor(readonly settings: DedupSettings) {
    this.hasher = createMinHasher(settings.minhashPermutations, settings.shingleSize);
    this.rows = settings.minhashPermutations / settings.lshBands;
    this.sigs = new Uint32Array(1024 * settings.minhashPermutations);
  }

  get size(): number {
    return this.ids.length;
  }

  /**
   * Adds an item in priority order. `reference` items (e.g. the SFT set when building the RL set)
   * are only ever kept: they make later items duplicates but are not outputs themselves.
   */
  add(id: string, text: string, images: readonly DedupImage[], reference = false, answer = ""): number {
    const i = this.ids.length;
    const perms = this.settings.minhashPermutations;
    if ((i + 1) * perms > this.sigs.length) {
      const grown = new Uint32Array(this.sigs.length * 2);
      grown.set(this.sigs);
      this.sigs = grown;
      const ex = new Int32Array(this.exactOf.length * 2);
      ex.set(this.exactOf);
      this.exactOf = ex;
    }
    this.ids.push(id);
    this.images.push(images.length > 0 ? [...images] : null);
    this.answers.push(answer.replace(/\s+/g, "").toLowerCase());
    this.reference.push(reference);
    const first = this.exact.get(id);
    this.exactOf[i] = first ?? -1;
    if (first === undefined) this.exact.set(id, i);
    this.hasher.signature(text, this.sigs.subarray(i * perms, (i + 1) * perms));
    return i;
  }

  private find(x: number): number {
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

  /** Joins two groups; the root is always the earlier item, so a group's root is the one kept. */
  private union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    if (ra < rb) this.parent[rb] = ra;
    else this.parent[ra] = rb;
  }

  private imagesMatch(a: number, b: number): boolean {
    const x = this.images[a];
    const y = this.images[b];
    if (!x || !y) return !x && !y;
    if (x.length !== y.length) return false;
    for (let k = 0; k < x.length; k++) {
      const p = x[k]!;
      const q = y[k]!;
      if (p.sha256 === q.sha256) continue;
      if (!p.dhash || !q.dhash) return false;
      if (hammingHex(p.dhash, q.dhash) > this.settings.imageHashMaxDistance) return false;
    }
    return true;
  }

  private similar(a: number, b: number): boolean {
    const perms = this.settings.minhashPermutations;
    const j = estimateJaccard(this.sigs, a * perms, this.sigs, b * perms, perms);
    // Same wording over the same-looking figure with another gold answer is another question
    // (a diagram whose numbers changed): perceptual hashes cannot read the numbers, answers can.
    return (
      j >= this.settings.nearDuplicateThreshold &&
      this.answers[a] === this.answers[b] &&
      this.imagesMatch(a, b)
    );
  }

  /** Finds the groups. Call once, after every item is added. */
  resolve(): void {
    const n = this.ids.length;
    const perms = this.settings.minhashPermutations;
    this.parent = new Int32Array(n);
    for (let i = 0; i < n; i++) this.parent[i] = i;
    for (let i = 0; i < n; i++) if (this.exactOf[i]! >= 0) this.union(i, this.exactOf[i]!);
    for (let band = 0; band < this.settings.lshBands; band++) {
      const buckets = new Map<number, number | number[]>();
      for (let i = 0; i < n; i++) {
        if (this.exactOf[i]! >= 0) continue;
        const key = bandKey(this.sigs, i * perms, band, this.rows);
        const reps = buckets.get(key);
        if (reps === undefined) {
          buckets.set(key, i);
          continue;
        }
        const list = typeof reps === "number" ? [reps] : reps;
        let joined = false;
        for (const r of list) {
          if (this.find(r) === this.find(i)) {
            joined = true;
            break;
          }
          if (this.similar(r, i)) {
            this.union(r, i);
            this.pairsConfirmed += 1;
            joined = true;
            break;
          }
          this.pairsRejected += 1;
        }
        if (!joined && list.length < REPS_PER_BUCKET) {
          list.push(i);
          if (typeof reps === "number") buckets.set(key, list);
        }
      }
    }
    this.resolved = true;
  }

  /** The decision for item `i`: keep it, or drop it naming the kept item of its group. */
  decision(i: number): DedupDecision {
    if (!this.resolved) throw new Error("resolve() first");
    const root = this.find(i);
    if (root === i || this.reference[i]) return { keep: true };
    const duplicateOf = this.ids[root]!;
    if (this.reference[root]) return { keep: false, reason: "in_sft_set", duplicateOf };
    return {
      keep: false,
      reason: this.exactOf[i]! >= 0 ? "duplicate_question" : "near_duplicate",
      duplicateOf,
    };
  }
}

/** Benchmark decontamination by word n-gram overlap (and exact text for questions shorter than n). */
export class Decontaminator {
  private readonly ngrams = new Map<string, string>();
  private readonly whole = new Map<string, string>();

  constructor(readonly n: number) {}

  private words(text: string): string[] {
    return shingleText(text).split(" ").filter(Boolean);
  }

  addBenchmarkQuestion(benchmark: string, text: string): void {
    const w = this.words(text);
    if (w.length === 0) return;
    this.whole.set(w.join(" "), benchmark);
    for (let i = 0; i + this.n <= w.length; i++) this.ngrams.set(w.slice(i, i + this.n).join(" "), benchmark);
  }

  get size(): number {
    return this.whole.size;
  }

  /** The benchmark a question leaks from, or null. */
  check(text: string): string | null {
    const w = this.words(text);
    const hit = this.whole.get(w.join(" "));
    if (hit) return hit;
    for (let i = 0; i + this.n <= w.length; i++) {
      const b = this.ngrams.get(w.slice(i, i + this.n).join(" "));
      if (b) return b;
    }
    return null;
  }
}
