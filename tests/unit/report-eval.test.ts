/**
 * The benchmark table of `recipe status` and the report, from the evaluate job's results
 * (runs/<id>/eval/<model>/<task>.json), and the cost lines of the training and evaluation jobs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { resolveRunConfig } from "../../core/config/index.ts";
import { estimateCost } from "../../core/cost.ts";
import type { EvalResult } from "../../core/eval/result.ts";
import { type EvalModel, keys } from "../../core/layout/index.ts";
import { evalRows, evalTableHtml, evalTableText, readEvalResults } from "../../core/pipeline/report-eval.ts";
import { writeJson } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";

const result = (model: EvalModel, task: string, accuracy: number): EvalResult => ({
  model,
  modelUri: model === "base" ? "Qwen/Qwen2.5-VL-7B-Instruct" : `s3://b/runs/r1/models/${model}/`,
  task,
  samples: 10,
  accuracy,
  format: 0.9,
  judged: { asked: 1, correct: 1 },
  preset: "strict",
  samplesKey: keys.evalSamples("r1", model, task),
  tools: { lmmsEval: "0.5.0" },
  seconds: 1,
});

describe("the benchmark table", () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it("reads every model's result per task, leaving the logged samples and other files alone", async () => {
    dir = mkdtempSync(join(tmpdir(), "eval-"));
    const store = new FsStore(dir);
    for (const r of [
      result("rl", "mmmu_val", 0.5),
      result("base", "mmmu_val", 0.4),
      result("sft", "logicvista", 0.3),
    ])
      await writeJson(store, keys.evalResult("r1", r.model, r.task), r);
    await store.write(keys.evalSamples("r1", "rl", "mmmu_val"), "x");
    await store.write("runs/r1/eval/notes.json", "{}");

    const read = await readEvalResults(store, "r1");

    expect(read.map((r) => `${r.model}/${r.task}`)).toEqual([
      "base/mmmu_val",
      "sft/logicvista",
      "rl/mmmu_val",
    ]);
  });

  it("puts the models side by side per task, with the paper's number and the difference of the last model trained", () => {
    const rows = evalRows(
      [
        result("base", "mathvista_testmini_cot", 0.6),
        result("sft", "mathvista_testmini_cot", 0.7),
        result("rl", "mathvista_testmini_cot", 0.75),
        result("base", "logicvista", 0.4),
        result("sft", "logicvista", 0.45),
      ],
      (task) => (task === "mathvista_testmini_cot" ? 0.79 : undefined),
      ["mathvista_testmini_cot", "logicvista"],
    );

    expect(rows.map((r) => r.task)).toEqual(["mathvista_testmini_cot", "logicvista"]);
    expect(rows[0]!.published).toBe(0.79);
    expect(rows[0]!.difference).toBeCloseTo(-0.04, 10);
    expect(rows[1]!.published).toBeUndefined();
    expect(rows[1]!.difference).toBeUndefined();
    // The means are over the tasks every model has (only mathvista here: RL has no logicvista), and
    // beside the paper's published averages (SFT 49.4, RL 54.3; none for the base model).
    expect(evalTableText(rows).split("\n").slice(0, 6)).toEqual([
      "benchmark               base    SFT     RL  paper  diff",
      "mathvista_testmini_cot  60.0   70.0   75.0   79.0  -4.0",
      "logicvista              40.0   45.0      -      -     -",
      "mean (tasks all have)   60.0   70.0   75.0             ",
      "paper average              -   49.4   54.3             ",
      "mean - paper               -  +20.6  +20.7             ",
    ]);
    const html = evalTableHtml(rows);
    expect(html).toContain("<th>base</th><th>SFT</th><th>RL</th><th>paper</th><th>difference</th>");
    expect(html).toContain('<td title="format 90.0%, 10 questions">75.0</td><td>79.0</td><td>-4.0</td>');
  });

  it("shows only the models evaluated, and nothing when none was", () => {
    const rows = evalRows([result("base", "aime24", 0.1)]);

    expect(evalTableText(rows).split("\n")[0]).toBe("benchmark              base  paper  diff");
    expect(evalTableText([])).toBe("");
    expect(evalTableHtml([])).toBe("<p>no model evaluated in this run</p>");
  });
});

describe("recipe estimate: training and evaluation", () => {
  const base = {
    runId: "r",
    sources: { sft: [{ name: "a", uri: "s3://b/a/", format: "parquet", domain: "chart", license: "x" }] },
  };
  const input = { sftQuestions: 0, rlQuestions: 0, avgTeacherTokens: 1, avgRolloutTokens: 1 };

  it("prices train-sft by its steps and packs, on its nodes (on demand), and nothing when it is off", () => {
    const on = estimateCost(resolveRunConfig({ ...base, training: { sft: { enabled: true } } }), input);
    const line = on.lines.find((l) => l.stage === "train-sft")!;

    // 4,300 steps x 61,440 tokens / 4,000 tokens per GPU-second = 18.35 h; 4 p5 nodes at $55.04.
    expect(line.hours).toBeCloseTo((4300 * 61440) / 4000 / 3600, 6);
    expect(line.usd).toBeCloseTo(line.hours * 55.04 * 4, 6);
    const twice = estimateCost(
      resolveRunConfig({ ...base, training: { sft: { enabled: true, maxSteps: 8600 } } }),
      input,
    ).lines.find((l) => l.stage === "train-sft")!;
    expect(twice.usd).toBeCloseTo(2 * line.usd, 6);
    expect(estimateCost(resolveRunConfig(base), input).lines.map((l) => l.stage)).not.toContain("train-sft");
  });

  it("prices evaluate per model and benchmark: the models the run has, or those named", () => {
    const one = (c: Record<string, unknown>) =>
      estimateCost(resolveRunConfig({ ...base, ...c }), { ...input, capacity: "on-demand" }).lines.find(
        (l) => l.stage === "evaluate",
      );

    const all = one({
      training: { sft: { enabled: true }, rl: { enabled: true } },
      evaluation: { enabled: true, tasks: ["recipe_mathvista_testmini", "recipe_mmmu_val"], limit: 100 },
    })!;
    const baseOnly = one({
      evaluation: { enabled: true, tasks: ["recipe_mathvista_testmini", "recipe_mmmu_val"], limit: 100 },
    })!;
    const named = one({
      training: { sft: { enabled: true }, rl: { enabled: true } },
      evaluation: {
        enabled: true,
        tasks: ["recipe_mathvista_testmini", "recipe_mmmu_val"],
        limit: 100,
        models: ["rl"],
      },
    })!;

    expect(all.what).toMatch(/^3 model\(s\) \(base, sft, rl\) x 2 benchmark\(s\) x 100 questions/);
    expect(all.usd).toBeCloseTo(3 * baseOnly.usd, 6);
    expect(named.usd).toBeCloseTo(baseOnly.usd, 6);
    expect(one({})).toBeUndefined();
  });
});
