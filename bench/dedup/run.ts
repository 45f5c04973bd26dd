/**
 * bench/dedup: 1M generated questions with planted near-duplicates through the near-duplicate
 * finder, as the dedup stage runs it.
 *
 *   npm run bench -- dedup [--questions 1000000] [--planted 50000]
 *
 * Targets (issue 5): at most 10 minutes, peak RSS at most 2 GiB, recall >= 0.95 and precision >= 0.99
 * on the planted pairs at Jaccard 0.8 (true Jaccard of the character shingles, computed exactly).
 */
import { parseArgs } from "node:util";
import { NearDuplicateFinder } from "../../core/dedup/index.ts";
import { shingleText } from "../../core/dedup/minhash.ts";
import { checkTargets, fmt, seeded, writeResult } from "../lib/stats.ts";

const { values: args } = parseArgs({
  options: {
    questions: { type: "string", default: "1000000" },
    planted: { type: "string", default: "50000" },
  },
});
const N = Number(args.questions);
const PLANTED = Number(args.planted);
const THRESHOLD = 0.8;
const SHINGLE = 5;

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
const sentence = (n: number) => Array.from({ length: n }, word).join(" ");

function shingles(text: string): Set<string> {
  const t = shingleText(text);
  const out = new Set<string>();
  for (let i = 0; i + SHINGLE <= Math.max(SHINGLE, t.length); i++) out.add(t.slice(i, i + SHINGLE));
  return out;
}
function jaccard(a: string, b: string): number {
  const x = shingles(a);
  const y = shingles(b);
  let inter = 0;
  for (const s of x) if (y.has(s)) inter++;
  return inter / (x.size + y.size - inter);
}

/** A variant of `text`: one word replaced, or one word appended, or punctuation and case changed. */
function variant(text: string): string {
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
}

let peakRss = 0;
const sample = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const started = performance.now();
const finder = new NearDuplicateFinder({
  nearDuplicateThreshold: THRESHOLD,
  minhashPermutations: 128,
  lshBands: 32,
  shingleSize: SHINGLE,
  imageHashMaxDistance: 6,
});

// Planted pairs: base at position p, its variant later. Everything else is unique random text.
const plantedAt = new Map<number, { base: number; text: string }>();
const texts: string[] = [];
const planted: { base: number; dup: number; j: number }[] = [];
const baseOf = new Map<number, number>();
for (let k = 0; k < PLANTED; k++) {
  const base = Math.floor(rand() * (N - 1));
  const dup = base + 1 + Math.floor(rand() * (N - base - 1));
  if (plantedAt.has(dup) || plantedAt.has(base) || baseOf.has(base) || baseOf.has(dup)) continue;
  baseOf.set(base, dup);
  plantedAt.set(dup, { base, text: "" });
}
for (let i = 0; i < N; i++) {
  const p = plantedAt.get(i);
  let text: string;
  if (p) {
    text = variant(texts[p.base] ?? sentence(20));
    planted.push({ base: p.base, dup: i, j: 0 });
  } else {
    text = sentence(14 + Math.floor(rand() * 12));
  }
  // Keep only the texts planted pairs need for their exact Jaccard check.
  if (baseOf.has(i) || p) texts[i] = text;
  finder.add(`q${i}`, text, []);
  if (i % 50000 === 0) sample();
}
const addSeconds = (performance.now() - started) / 1000;
finder.resolve();
sample();
const seconds = (performance.now() - started) / 1000;

for (const p of planted) p.j = jaccard(texts[p.base]!, texts[p.dup]!);
const positives = planted.filter((p) => p.j >= THRESHOLD);
const found = positives.filter((p) => {
  const d = finder.decision(p.dup);
  return !d.keep && d.duplicateOf === `q${p.base}`;
});
let dropped = 0;
let droppedTrue = 0;
for (let i = 0; i < N; i++) {
  const d = finder.decision(i);
  if (d.keep) continue;
  dropped++;
  const p = plantedAt.get(i);
  if (p && d.duplicateOf === `q${p.base}` && jaccard(texts[p.base]!, texts[i]!) >= THRESHOLD) droppedTrue++;
}
const recall = found.length / Math.max(1, positives.length);
const precision = dropped === 0 ? 1 : droppedTrue / dropped;
console.log(
  `dedup bench: ${N} questions, ${planted.length} planted pairs (${positives.length} at J >= ${THRESHOLD}), ` +
    `signatures ${fmt(addSeconds)} s, total ${fmt(seconds)} s (${fmt(N / seconds)} q/s), peak RSS ${fmt(peakRss / 2 ** 20)} MiB`,
);
console.log(
  `  dropped ${dropped}, recall ${recall.toFixed(4)}, precision ${precision.toFixed(4)} ` +
    `(confirmed ${finder.pairsConfirmed}, rejected candidates ${finder.pairsRejected})`,
);
const ok = checkTargets([
  { name: "wall time (s)", value: seconds, limit: 600, kind: "max" },
  { name: "peak RSS (MiB)", value: peakRss / 2 ** 20, limit: 2048, kind: "max" },
  { name: "recall on planted pairs at J >= 0.8", value: recall, limit: 0.95, kind: "min" },
  { name: "precision of drops", value: precision, limit: 0.99, kind: "min" },
]);
writeResult("bench/results/dedup.json", {
  questions: N,
  planted: planted.length,
  positives: positives.length,
  seconds,
  peakRssMiB: peakRss / 2 ** 20,
  recall,
  precision,
  dropped,
});
process.exitCode = ok ? 0 : 1;
