/**
 * bench/dedup: 1M generated questions with planted near-duplicates through the in-memory
 * near-duplicate finder (the grouping rule the pipeline's fan-out runs; `dedup-fanout` measures that),
 * and optionally the same questions through a peer a user would pick instead.
 *
 *   npm run bench -- dedup [--questions 1000000] [--planted 50000]
 *                          [--peer datatrove] [--peer-tokenizer spacy|space] [--peer-workers 1]
 *
 * Targets (issue 5): at most 10 minutes, peak RSS at most 2 GiB, recall >= 0.95 and precision >= 0.99
 * on the planted pairs at Jaccard 0.8 (true Jaccard of the character shingles, computed exactly).
 *
 * The datatrove peer (issue 17) runs datatrove's own 4-step MinHash pipeline (signatures, buckets,
 * cluster, filter) with LocalPipelineExecutor, pinned in a virtual environment the bench creates.
 * Closest settings and where they cannot match:
 *   - permutations and bands: the same, 128 hashes as 32 buckets x 4 hashes per bucket;
 *   - shingles: ours are 5-character shingles; datatrove's are word n-grams only. We use 2-word
 *     n-grams, which on these questions (one word of ~20 replaced, one appended, case changed) give
 *     about the same Jaccard as our 5-character shingles (one replaced word: 17/21 = 0.81);
 *   - threshold: ours confirms every LSH candidate by its estimated Jaccard (>= 0.8), the gold answer
 *     and the images; datatrove has no confirmation step: any shared bucket is a duplicate;
 *   - normalization: datatrove's default (lower case, no punctuation, numbers folded); ours is lower
 *     case, letters and digits;
 *   - kept member: ours keeps the earliest question of a group; datatrove keeps the root of its
 *     union-find (either member), so recall counts a pair when either member is dropped naming the
 *     other, by the same rule for both sides;
 *   - word tokenizer: datatrove's English default (spaCy, blank model); `--peer-tokenizer space`
 *     uses a whitespace tokenizer through datatrove's own custom-tokenizer hook;
 *   - processes: ours runs in one process on one core; datatrove with `--peer-workers` (default 1,
 *     the same resources). Peak memory is the sum of RSS over each side's process tree.
 *   Input files for the peer are written before it starts and are not counted in its time.
 */
import { execFileSync } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { NearDuplicateFinder } from "../../core/dedup/index.ts";
import { runMeasured } from "../lib/process-tree.ts";
import { BenchReport, fmt, seeded } from "../lib/stats.ts";
import { generate, SETTINGS, score, THRESHOLD, type Workload } from "./workload.ts";

const { values: args } = parseArgs({
  options: {
    questions: { type: "string", default: "1000000" },
    planted: { type: "string", default: "50000" },
    peer: { type: "string" },
    "peer-tokenizer": { type: "string", default: "spacy" },
    "peer-workers": { type: "string", default: "1" },
  },
});
if (args.peer !== undefined && args.peer !== "datatrove") {
  console.error(`unknown peer ${args.peer}; known: datatrove`);
  process.exit(2);
}
/** datatrove and what its MinHash steps import (its `processing` extra is far larger: only these are needed). */
const DATATROVE = {
  version: "0.10.1",
  spacy: "3.8.18",
  xxhash: "3.8.2",
  regex: "2026.11.19",
  tokenizers: "0.23.3",
  orjson: "3.13.0",
};
const VENV = join("bench", ".venv-datatrove");
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
// Templated questions: the same words, other numbers, gold answers that often agree by chance (the
// last digit). Distinct problems: none may be dropped.
const templated = new NearDuplicateFinder(SETTINGS);
const TEMPLATED = 10_000;
const trand = seeded(7);
const seenTemplated = new Set<string>();
for (let i = 0; templated.size < TEMPLATED; i++) {
  const [a, b, c] = [
    100 + Math.floor(trand() * 900),
    100 + Math.floor(trand() * 900),
    1000 + Math.floor(trand() * 9000),
  ];
  const text = `Compute the last digit of ${a} * ${b} + ${c}.`;
  if (seenTemplated.has(text)) continue;
  seenTemplated.add(text);
  templated.add(`t${i}`, text, [], false, String((a * b + c) % 10));
}
templated.resolve();
let templatedDropped = 0;
for (let i = 0; i < templated.size; i++) if (!templated.decision(i).keep) templatedDropped += 1;
console.log(`  templated: ${TEMPLATED} distinct arithmetic questions, ${templatedDropped} dropped`);

const report = new BenchReport("dedup", { questions: N, planted: workload.planted, ...SETTINGS })
  .figure("wall time", seconds, "s", { kind: "max", limit: 600 })
  .figure("throughput", N / seconds, "questions/s")
  .figure("peak RSS", peakRss / 2 ** 20, "MiB", { kind: "max", limit: 2048 })
  .figure("recall on planted pairs at J >= 0.8", s.recall, "fraction", { kind: "min", limit: 0.95 })
  .figure("precision of drops", s.precision, "fraction", { kind: "min", limit: 0.99 })
  .figure("dropped", s.dropped, "questions")
  .figure("templated questions dropped (of 10,000 distinct)", templatedDropped, "questions", {
    kind: "max",
    limit: 0,
  })
  .details({ positives: s.positives });
if (args.peer === "datatrove")
  await datatrove(report, { seconds, peakRss, recall: s.recall, precision: s.precision });
report.finish();

// ---------------------------------------------------------------------------------------------------

/** The pinned virtual environment for the peer (created once, git-ignored). */
function ensureDatatrove(): string {
  const python = join(VENV, "bin", "python");
  const pins = [
    `datatrove==${DATATROVE.version}`,
    `spacy==${DATATROVE.spacy}`,
    `xxhash==${DATATROVE.xxhash}`,
    `regex==${DATATROVE.regex}`,
    `tokenizers==${DATATROVE.tokenizers}`,
    `orjson==${DATATROVE.orjson}`,
  ];
  const ready = () => {
    try {
      execFileSync(
        python,
        [
          "-c",
          `import spacy, orjson, xxhash, datatrove.pipeline.dedup; from importlib.metadata import version; assert version("datatrove") == "${DATATROVE.version}"`,
        ],
        {
          stdio: "ignore",
        },
      );
      return true;
    } catch {
      return false;
    }
  };
  if (existsSync(python) && ready()) return python;
  console.log(`creating ${VENV} with ${pins.join(" ")} ...`);
  if (!existsSync(python)) execFileSync("python3", ["-m", "venv", VENV], { stdio: "inherit" });
  execFileSync(python, ["-m", "pip", "install", "-q", ...pins], { stdio: "inherit" });
  return python;
}

async function writePeerInput(dir: string, files: number): Promise<Workload> {
  await mkdir(dir, { recursive: true });
  const per = Math.ceil(N / files);
  const streams = Array.from({ length: files }, (_, f) =>
    createWriteStream(join(dir, `${String(f).padStart(3, "0")}.jsonl`)),
  );
  const w = await generate(N, Number(args.planted), async (i, text) => {
    const out = streams[Math.floor(i / per)]!;
    if (!out.write(`${JSON.stringify({ id: `q${i}`, text })}\n`))
      await new Promise<void>((r) => out.once("drain", () => r()));
  });
  await Promise.all(streams.map((st) => new Promise<void>((r) => st.end(() => r()))));
  return w;
}

async function datatrove(
  report: BenchReport,
  ours: { seconds: number; peakRss: number; recall: number; precision: number },
): Promise<void> {
  const python = ensureDatatrove();
  const dir = join("bench", ".work", "dedup-peer");
  await rm(dir, { recursive: true, force: true });
  const tasks = 4;
  // The same LSH layout as ours; 2-word n-grams stand for our 5-character shingles (header).
  const peer = {
    nGrams: 2,
    buckets: SETTINGS.lshBands,
    hashesPerBucket: SETTINGS.minhashPermutations / SETTINGS.lshBands,
  };
  const peerWorkload = await writePeerInput(join(dir, "input"), tasks);
  const workers = Number(args["peer-workers"]);
  console.log(
    `\ndatatrove ${DATATROVE.version}: MinHash ${peer.buckets} buckets x ${peer.hashesPerBucket} hashes, ${peer.nGrams}-word n-grams, tokenizer ${args["peer-tokenizer"]}, ${tasks} input files, ${workers} worker(s)`,
  );
  const run = await runMeasured(python, [
    "bench/dedup/datatrove_peer.py",
    "--input",
    join(dir, "input"),
    "--work",
    join(dir, "work"),
    "--tasks",
    String(tasks),
    "--workers",
    String(workers),
    "--n-grams",
    String(peer.nGrams),
    "--buckets",
    String(peer.buckets),
    "--hashes-per-bucket",
    String(peer.hashesPerBucket),
    "--tokenizer",
    String(args["peer-tokenizer"]),
  ]);
  if (run.code !== 0)
    throw new Error(`datatrove peer failed (exit ${run.code}):\n${run.stderr.slice(-4000)}`);
  const out = JSON.parse(run.stdout.trim().split("\n").at(-1)!) as {
    seconds: Record<string, number>;
    drops: [number, number][];
  };
  const drops = new Map(out.drops.filter(([, k]) => k >= 0));
  const s = score(peerWorkload, drops);
  const peakMiB = run.peakRssBytes / 2 ** 20;
  console.log(
    `  ${fmt(run.seconds)} s (${Object.entries(out.seconds)
      .map(([k, v]) => `${k} ${fmt(v)} s`)
      .join(
        ", ",
      )}), peak RSS of the tree ${fmt(peakMiB)} MiB, dropped ${s.dropped}, recall ${s.recall.toFixed(4)}, precision ${s.precision.toFixed(4)}`,
  );
  console.log(
    `  datatrove / ours: time ${fmt(run.seconds / ours.seconds)}x, peak memory ${fmt(peakMiB / (ours.peakRss / 2 ** 20))}x; ` +
      `recall ${ours.recall.toFixed(4)} (ours) vs ${s.recall.toFixed(4)}, precision ${ours.precision.toFixed(4)} (ours) vs ${s.precision.toFixed(4)}`,
  );
  report
    .figure("datatrove: wall time", run.seconds, "s")
    .figure("datatrove: peak RSS of the process tree", peakMiB, "MiB")
    .figure("datatrove: recall on planted pairs at J >= 0.8", s.recall, "fraction")
    .figure("datatrove: precision of drops", s.precision, "fraction")
    .figure("datatrove: dropped", s.dropped, "questions")
    .figure("time ratio, datatrove / ours", run.seconds / ours.seconds, "x")
    .figure("memory ratio, datatrove / ours", peakMiB / (ours.peakRss / 2 ** 20), "x")
    .details({
      datatrove: {
        ...DATATROVE,
        tokenizer: args["peer-tokenizer"],
        workers,
        tasks,
        stageSeconds: out.seconds,
        settings: peer,
      },
    });
  await rm(dir, { recursive: true, force: true });
}
