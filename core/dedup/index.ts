/**
 * Question dedup: exact (by id), near-duplicate (MinHash + LSH over text shingles, confirmed by the
 * image perceptual hash so the same text over another image is kept), and benchmark
 * decontamination (word n-gram overlap).
 *
 * Near duplicates must also have the same gold answer (after whitespace and case): a figure whose
 * numbers changed looks the same to a perceptual hash but asks another question. And the same numbers
 * and math symbols in the same order: a templated question with other numbers is another question.
 *
 * Items are added in priority order (sources in configured order, rows in file order). Near-duplicate
 * candidates that verify are joined into groups; the earliest member of each group is kept and every
 * other member is dropped naming it. Memory: one signature per item (4 bytes x permutations) plus one
 * band's bucket map at a time, so a million questions fit in well under 2 GiB.
 */
import {
  comparableAnswer,
  type DedupFeatures,
  type DedupImage,
  type DedupSettings,
  mathTokensHash,
  REPS_PER_BUCKET,
  similar,
  UnionFind,
} from "./groups.ts";
import { bandKey, createMinHasher, type MinHasher, shingleText } from "./minhash.ts";

export * from "./groups.ts";

export type DedupDecision =
  | { keep: true }
  | { keep: false; reason: "duplicate_question" | "near_duplicate" | "in_sft_set"; duplicateOf: string };

/**
 * Everything in memory: one signature per item (4 bytes x permutations) plus one band's buckets at
 * a time, so a million questions fit in well under 2 GiB. The pipeline runs the same rule as a
 * fan-out (core/pipeline/dedup-step.ts); this one is its reference and the bench's subject.
 */
export class NearDuplicateFinder {
  private readonly hasher: MinHasher;
  private readonly rows: number;
  private sigs: Uint32Array;
  private readonly ids: string[] = [];
  private readonly images: (DedupImage[] | null)[] = [];
  private readonly answers: string[] = [];
  private math: Uint32Array = new Uint32Array(1024);
  private readonly reference: boolean[] = [];
  private readonly exact = new Map<string, number>();
  private exactOf: Int32Array = new Int32Array(1024);
  private groups: UnionFind | null = null;
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
    if (i >= this.math.length) {
      const grown = new Uint32Array(this.math.length * 2);
      grown.set(this.math);
      this.math = grown;
    }
    this.math[i] = mathTokensHash(text);
    this.ids.push(id);
    this.images.push(images.length > 0 ? [...images] : null);
    this.answers.push(comparableAnswer(answer));
    this.reference.push(reference);
    const first = this.exact.get(id);
    this.exactOf[i] = first ?? -1;
    if (first === undefined) this.exact.set(id, i);
    this.hasher.signature(text, this.sigs.subarray(i * perms, (i + 1) * perms));
    return i;
  }

  private features(i: number): DedupFeatures {
    const perms = this.settings.minhashPermutations;
    return {
      sig: this.sigs.subarray(i * perms, (i + 1) * perms),
      answer: this.answers[i]!,
      math: this.math[i]!,
      images: this.images[i]!,
    };
  }

  /** Finds the groups. Call once, after every item is added. */
  resolve(): void {
    const n = this.ids.length;
    const perms = this.settings.minhashPermutations;
    const groups = new UnionFind(n);
    for (let i = 0; i < n; i++) if (this.exactOf[i]! >= 0) groups.union(i, this.exactOf[i]!);
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
        for (const r of list) {
          if (groups.find(r) === groups.find(i)) continue;
          if (similar(this.settings, this.features(r), this.features(i))) {
            groups.union(r, i);
            this.pairsConfirmed += 1;
          } else this.pairsRejected += 1;
        }
        if (list.length < REPS_PER_BUCKET) {
          list.push(i);
          if (typeof reps === "number") buckets.set(key, list);
        }
      }
    }
    this.groups = groups;
  }

  /** The decision for item `i`: keep it, or drop it naming the kept item of its group. */
  decision(i: number): DedupDecision {
    if (!this.groups) throw new Error("resolve() first");
    const root = this.groups.find(i);
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
