/**
 * bench/dedup: 1M generated questions with planted near-duplicates through the in-memory
 * near-duplicate finder (the grouping rule the pipeline's fan-out runs; `dedup-fanout` measures that).
 *
 *   npm run bench -- dedup [--questions 1000000] [--planted 50000]
 *
 * Targets (issue 5): at most 10 minutes, peak RSS at most 2 GiB, recall >= 0.95 and precision >= 0.99
 * on the planted pairs at Jaccard 0.8 (true Jaccard of the character shingles, computed exactly).
 */
import { parseArgs } from "node:util";
import { NearDuplicateFinder } from "../../core/dedup/index.ts";
import { checkTargets, fmt, writeResult } from "../lib/stats.ts";
import { generate, SETTINGS, score, THRESHOLD } from "./workload.ts";

const { values: args } = parseArgs({
  options: {
    questions: { type: "string", default: "1000000" },
    planted: { type: "string", default: "50000" },
  },
});
const N = Number(args.questions);

let peakRss = 0;
const sample = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
};
const started = performance.now();
const finder = new NearDuplicateFinder(SETTINGS);
const workload = await generate(N, Number(args.planted), (i, text) => {
  finder.add(`q${i}`, text, []);
  if (i % 50000 === 0) sample();
});
const addSeconds = (performance.now() - started) / 1000;
finder.resolve();
sample();
const seconds = (performance.now() - started) / 1000;

const drops = new Map<number, number>();
for (let i = 0; i < N; i++) {
  const d = finder.decision(i);
  if (!d.keep) drops.set(i, Number(d.duplicateOf.slice(1)));
}
const s = score(workload, drops);
console.log(
  `dedup bench (in memory): ${N} questions, ${workload.planted} planted pairs (${s.positives} at J >= ${THRESHOLD}), ` +
    `signatures ${fmt(addSeconds)} s, total ${fmt(seconds)} s (${fmt(N / seconds)} q/s), peak RSS ${fmt(peakRss / 2 ** 20)} MiB`,
);
console.log(
  `  dropped ${s.dropped}, recall ${s.recall.toFixed(4)}, precision ${s.precision.toFixed(4)} ` +
    `(confirmed ${finder.pairsConfirmed}, rejected candidates ${finder.pairsRejected})`,
);
const ok = checkTargets([
  { name: "wall time (s)", value: seconds, limit: 600, kind: "max" },
  { name: "peak RSS (MiB)", value: peakRss / 2 ** 20, limit: 2048, kind: "max" },
  { name: "recall on planted pairs at J >= 0.8", value: s.recall, limit: 0.95, kind: "min" },
  { name: "precision of drops", value: s.precision, limit: 0.99, kind: "min" },
]);
writeResult("bench/results/dedup.json", {
  questions: N,
  planted: workload.planted,
  positives: s.positives,
  seconds,
  peakRssMiB: peakRss / 2 ** 20,
  recall: s.recall,
  precision: s.precision,
  dropped: s.dropped,
});
process.exitCode = ok ? 0 : 1;
