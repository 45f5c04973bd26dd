/**
 * The dedup benches' workload: N generated questions, unique random text except for planted pairs
 * (a base and a later variant: one word replaced, one appended, or case and punctuation changed),
 * and the scoring against the planted pairs' exact Jaccard.
 */
import { shingleText } from "../../core/dedup/minhash.ts";
import { seeded } from "../lib/stats.ts";

export const THRESHOLD = 0.8;
export const SHINGLE = 5;
export const SETTINGS = {
  nearDuplicateThreshold: THRESHOLD,
  minhashPermutations: 128,
  lshBands: 32,
  shingleSize: SHINGLE,
  imageHashMaxDistance: 6,
};

function shingles(text: string): Set<string> {
  const t = shingleText(text);
  const out = new Set<string>();
  for (let i = 0; i + SHINGLE <= Math.max(SHINGLE, t.length); i++) out.add(t.slice(i, i + SHINGLE));
  return out;
}

export function jaccard(a: string, b: string): number {
  const x = shingles(a);
  const y = shingles(b);
  let inter = 0;
  for (const s of x) if (y.has(s)) inter++;
  return inter / (x.size + y.size - inter);
}

export interface Workload {
  /** Planted pairs by the position of their later member. */
  plantedAt: Map<number, number>;
  /** Texts of planted pairs' members only (what scoring needs). */
  texts: Map<number, string>;
  planted: number;
}

/** Generates the questions in order, calling `each(i, text)`; keeps only what scoring needs. */
export async function generate(
  n: number,
  plantedPairs: number,
  each: (i: number, text: string) => void | Promise<void>,
): Promise<Workload> {
  const rand = seeded(42);
  const VOCAB = Array.from({ length: 5000 }, (_, i) => {
    let w = "";
    let x = i * 7919 + 13;
    for (let k = 0; k < 3 + (i % 6); k++) {
      w += "abcdefghijklmnopqrstuvwxyz"[x % 26];
      x = Math.floor(x / 26) + i * 31 + k * 17;
    }
    return w;
  });
  const word = () => VOCAB[Math.floor(rand() * VOCAB.length)]!;
  const sentence = (k: number) => Array.from({ length: k }, word).join(" ");
  const variant = (text: string) => {
    const w = text.split(" ");
    switch (Math.floor(rand() * 3)) {
      case 0:
        w[Math.floor(rand() * w.length)] = word();
        return w.join(" ");
      case 1:
        return `${text} ${word()}`;
      default:
        return `${text.toUpperCase()}?`;
    }
  };
  const plantedAt = new Map<number, number>();
  const bases = new Set<number>();
  for (let k = 0; k < plantedPairs; k++) {
    const base = Math.floor(rand() * (n - 1));
    const dup = base + 1 + Math.floor(rand() * (n - base - 1));
    if (plantedAt.has(dup) || plantedAt.has(base) || bases.has(base) || bases.has(dup)) continue;
    bases.add(base);
    plantedAt.set(dup, base);
  }
  const texts = new Map<number, string>();
  for (let i = 0; i < n; i++) {
    const base = plantedAt.get(i);
    const text =
      base !== undefined ? variant(texts.get(base) ?? sentence(20)) : sentence(14 + Math.floor(rand() * 12));
    if (bases.has(i) || base !== undefined) texts.set(i, text);
    await each(i, text);
  }
  return { plantedAt, texts, planted: plantedAt.size };
}

/**
 * Recall: planted pairs at J >= THRESHOLD of which one member was dropped naming the other (ours always
 * drops the later one; a peer may keep either). Precision: drops that are such a pair (J measured
 * exactly). `drops` maps dropped position -> kept position.
 */
export function score(w: Workload, drops: Map<number, number>) {
  const pair = (i: number, of: number) => w.plantedAt.get(i) === of || w.plantedAt.get(of) === i;
  const similar = (i: number, of: number) => jaccard(w.texts.get(i)!, w.texts.get(of)!) >= THRESHOLD;
  let positives = 0;
  let found = 0;
  for (const [dup, base] of w.plantedAt) {
    if (!similar(dup, base)) continue;
    positives += 1;
    if (drops.get(dup) === base || drops.get(base) === dup) found += 1;
  }
  let droppedTrue = 0;
  for (const [i, of] of drops) if (pair(i, of) && similar(i, of)) droppedTrue += 1;
  return {
    positives,
    recall: found / Math.max(1, positives),
    precision: drops.size === 0 ? 1 : droppedTrue / drops.size,
    dropped: drops.size,
  };
}
