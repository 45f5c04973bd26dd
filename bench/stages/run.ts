/**
 * bench/stages: records per second per CPU stage, and the whole CPU path, on generated questions
 * (30 % with one of the sample's images) with a deterministic stand-in for the GPU generate job
 * (4 samples per question: 2 right, 1 wrong, 1 truncated).
 *
 *   npm run bench -- stages [--questions 100000]
 *
 * Target (issue 5): the whole CPU path over 100k questions within 10 minutes on this machine.
 */

import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { resolveRunConfig } from "../../core/config/index.ts";
import { keys } from "../../core/layout/index.ts";
import type { RunContext } from "../../core/pipeline/context.ts";
import { readManifest } from "../../core/pipeline/context.ts";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { readJson } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { ShardWriter } from "../../core/shards/jsonl.ts";
import type { StageSummary } from "../../core/stages/stage.ts";
import { type GenerateJob, runDirect } from "../../local/direct-run.ts";
import { startReplayServer } from "../../local/replay-server.ts";
import { fakeGenerate } from "../../tests/helpers/pipeline.ts";
import { BenchReport, fmt, seeded } from "../lib/stats.ts";

const { values: args } = parseArgs({
  options: {
    questions: { type: "string", default: "100000" },
    // "fake": a deterministic in-process stand-in for the GPU job; "replay": the real generate worker
    // (the image's entrypoint code, as child processes) against the bundled replay teacher.
    generator: { type: "string", default: "fake" },
    samples: { type: "string", default: "4" },
  },
});
const N = Number(args.questions);
const PER_FILE = 10_000;
const dir = await mkdtemp(join(tmpdir(), "bench-stages-"));
const store = new FsStore(dir);
const sample = new FsStore(resolve("examples/sample"));
const rand = seeded(7);
const IMAGES = ["bar-0", "bar-1", "tri-0", "circle-0", "scene-1", "pie-0", "line-1", "rect-0"];
const words =
  "apple pear plum fig river stone cloud tree house bridge number angle circle square line point".split(" ");

for (const name of IMAGES) {
  await store.write(`sources/images/${name}.png`, (await sample.readBytes(`images/${name}.png`))!);
}
for (let f = 0; f * PER_FILE < N; f++) {
  const w = new ShardWriter(store, `sources/gen/part-${String(f).padStart(4, "0")}.jsonl.gz`);
  for (let i = f * PER_FILE; i < Math.min(N, (f + 1) * PER_FILE); i++) {
    const a = Math.floor(rand() * 1000);
    const b = Math.floor(rand() * 1000);
    const filler = Array.from({ length: 8 }, () => words[Math.floor(rand() * words.length)]).join(" ");
    const withImage = rand() < 0.3;
    await w.write({
      question: `Question ${i}: ${filler}. What is ${a} + ${b}?`,
      answer: String(a + b),
      images: withImage ? [`../images/${IMAGES[i % IMAGES.length]}.png`] : [],
    });
  }
  await w.close();
}
const raw = {
  runId: "bench",
  sources: {
    sft: [{ name: "gen", uri: "sources/gen/", format: "jsonl", domain: "general_vqa", license: "CC0-1.0" }],
    rl: [
      {
        name: "gen-rl",
        uri: "sources/gen/part-0000.jsonl.gz",
        format: "jsonl",
        domain: "text_math",
        license: "CC0-1.0",
      },
    ],
  },
  teacher: { samplesPerQuestion: Number(args.samples), requestConcurrency: 128 },
  verification: { judge: { enabled: false } },
  rl: { removeSftOverlap: false },
  batch: { questionsPerShard: 5000 },
};
await store.write(keys.runConfig("bench"), JSON.stringify(raw));
await validateConfig(store, "bench");
const ctx: RunContext = {
  store,
  runId: "bench",
  config: resolveRunConfig(raw),
  sources: (uri) => ({ store, key: uri }),
};

let peak = 0;
const timer = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 200);
const t0 = performance.now();
const replay = args.generator === "replay" ? await startReplayServer() : null;
const generate: GenerateJob = replay
  ? async (c, plan, out) => {
      // The Batch array job: one child process per manifest item, two at a time, the container contract.
      const items = await readManifest<unknown>(c.store, keys.manifest(c.runId, plan));
      let next = 0;
      const child = (index: number) =>
        new Promise<number | null>((done) => {
          const p = spawn(process.execPath, ["--import", "tsx", "batch-images/generate/src/main.ts"], {
            env: {
              ...process.env,
              RECIPE_BUCKET: `file://${dir}`,
              RECIPE_RUN_ID: c.runId,
              RECIPE_MODE: out === "distill" ? "distill" : "rollouts",
              AWS_BATCH_JOB_ARRAY_INDEX: String(index),
              OPENAI_BASE_URL: replay.url,
            },
            stdio: "ignore",
          });
          p.on("exit", (code) => done(code));
        });
      await Promise.all(
        [0, 1].map(async () => {
          while (next < items.length) {
            const code = await child(next++);
            if (code !== 0) throw new Error(`generate child exited ${code}`);
          }
        }),
      );
    }
  : (c, plan, out) => fakeGenerate(c, plan, out, Number(args.samples)).then(() => undefined);
const { seconds } = await runDirect(ctx, generate);
await replay?.close();
const total = (performance.now() - t0) / 1000;
clearInterval(timer);

console.log(
  `stages bench: ${N} questions, generator ${args.generator}, ${args.samples} samples each, CPU path ${fmt(total)} s, peak RSS of this process ${fmt(peak / 2 ** 20)} MiB`,
);
const perStage: Record<string, { seconds: number; recordsIn: number; perSecond: number }> = {};
for (const [stage, s] of Object.entries(seconds)) {
  const summary = await readJson<StageSummary>(store, keys.success("bench", stage as never));
  const n = summary?.in ?? 0;
  perStage[stage] = { seconds: s, recordsIn: n, perSecond: n / s };
  console.log(
    `  ${stage.padEnd(20)} ${fmt(s).padStart(8)} s  ${String(n).padStart(8)} in  ${fmt(n / s).padStart(8)} rec/s`,
  );
}
new BenchReport("stages", { questions: N, generator: args.generator, samples: Number(args.samples) })
  .figure("whole CPU path", total, "s", { kind: "max", limit: 600 })
  .figure("peak RSS of the bench process", peak / 2 ** 20, "MiB")
  .details({ perStage })
  .finish();
await rm(dir, { recursive: true, force: true });
