import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resolveRunConfig } from "../../core/config/index.ts";
import { ConfigError, InputContractError } from "../../core/errors.ts";
import { aggregateVerdicts } from "../../core/eval/result.ts";
import { evalBenchmarks, evalTargets, lmmsEvalCommand, maxImagesPerPrompt } from "../../core/eval/run.ts";
import { scoreAnswer } from "../../core/eval/score.ts";
import {
  EVAL_BENCHMARKS,
  EVAL_TASK_NAMES,
  RECIPE_EVAL_TASKS,
  renderTaskYaml,
  taskModule,
} from "../../core/eval/tasks.ts";
import { keys } from "../../core/layout/index.ts";
import { writeJson } from "../../core/shards/byte-store.ts";
import type { FsStore } from "../../core/shards/fs-store.ts";
import { sampleContext } from "../helpers/pipeline.ts";

const config = (evaluation: Record<string, unknown> = {}, training: Record<string, unknown> = {}) =>
  resolveRunConfig({
    runId: "e1",
    sources: {
      sft: [{ name: "s", uri: "s3://b/s/", format: "jsonl", domain: "general_vqa", license: "CC0-1.0" }],
    },
    evaluation: { enabled: true, ...evaluation },
    training,
  });

describe("the recipe's benchmarks as this project's lmms-eval tasks", () => {
  it("defines every default task, each with a Hub dataset, a split and its columns", () => {
    expect(EVAL_BENCHMARKS.map((b) => b.task)).toEqual([...EVAL_TASK_NAMES]);
    expect(RECIPE_EVAL_TASKS.every((t) => EVAL_BENCHMARKS.some((b) => b.task === t))).toBe(true);
    for (const b of EVAL_BENCHMARKS) {
      expect(b.task).toMatch(/^recipe_/); // lmms-eval's own tasks of the same name would win
      expect(b.dataset.path).toMatch(/^[\w-]+\/[\w.-]+$/);
      expect(b.dataset.split).not.toBe("");
      expect(b.columns.answer).not.toBe("");
    }
    expect(config().evaluation.tasks).toEqual([...RECIPE_EVAL_TASKS]);
  });

  it("renders lmms-eval YAML with the run's generation limit, greedy decoding and the verifier's metrics", () => {
    const b = EVAL_BENCHMARKS.find((x) => x.task === "recipe_mmmu_pro_standard")!;
    const yaml = renderTaskYaml(b, { maxNewTokens: 49152, instruction: 'Think in <think> "tags"' });
    expect(yaml).toContain('task: "recipe_mmmu_pro_standard"');
    expect(yaml).toContain('dataset_path: "MMMU/MMMU_Pro"');
    expect(yaml).toContain('dataset_name: "standard (10 options)"');
    expect(yaml).toContain('test_split: "test"');
    expect(yaml).toContain("  max_new_tokens: 49152\n  temperature: 0");
    expect(yaml).toContain("process_results: !function recipe_mmmu_pro_standard.process_results");
    for (const m of ["acc_score", "format_score", "verdict"]) expect(yaml).toContain(`- metric: ${m}`);
    expect(yaml).toContain('pre_prompt: "Think in <think> \\"tags\\"\\n\\n"');
    // A local copy replaces the Hub's path and its configuration name.
    const local = renderTaskYaml(b, { maxNewTokens: 8, instruction: "x", datasetPath: "/data/mmmu" });
    expect(local).toContain('dataset_path: "/data/mmmu"');
    expect(local).not.toContain("dataset_name");
    expect(taskModule(b)).toContain(
      "doc_to_visual, doc_to_text, process_results, judged_count = bind(_spec)",
    );
  });

  it("refuses a task it has no definition for, in run.json and in the job", () => {
    expect(() => config({ tasks: ["mathvista_testmini_cot"] })).toThrow(ConfigError);
    // A resolved config written by an older version could still name one: the job refuses it too.
    expect(() =>
      evalBenchmarks({ ...config(), evaluation: { ...config().evaluation, tasks: ["nope"] as never } }),
    ).toThrow(/not one of this project's task definitions/);
    expect(maxImagesPerPrompt(evalBenchmarks(config()))).toBe(7); // MMMU's image_1..image_7
  });
});

describe("which models the evaluate job serves", () => {
  it("by default: base, and each trained model that has exported a folder", () => {
    const c = config({}, { sft: { enabled: true, baseModel: "Qwen/Qwen2.5-VL-7B-Instruct" } });
    expect(evalTargets(c, "bkt", "e1", new Set())).toEqual([
      { model: "base", uri: "Qwen/Qwen2.5-VL-7B-Instruct" },
    ]);
    expect(evalTargets(c, "bkt", "e1", new Set(["rl", "sft"]))).toEqual([
      { model: "base", uri: "Qwen/Qwen2.5-VL-7B-Instruct" },
      { model: "sft", uri: "s3://bkt/runs/e1/models/sft/" },
      { model: "rl", uri: "s3://bkt/runs/e1/models/rl/" },
    ]);
  });

  it("named models must exist: a missing one is refused, not skipped", () => {
    // validate refuses naming a model the run never trains; one it trains may still be missing.
    const c = config({ models: ["rl"] }, { rl: { enabled: true } });
    expect(() => evalTargets(c, "bkt", "e1", new Set(["sft"]))).toThrow(InputContractError);
    expect(() => evalTargets(c, "bkt", "e1", new Set(["sft"]))).toThrow(
      /runs\/e1\/models\/rl\/ has no config.json/,
    );
    expect(evalTargets(c, "bkt", "e1", new Set(["rl"]))).toEqual([
      { model: "rl", uri: "s3://bkt/runs/e1/models/rl/" },
    ]);
  });

  it("lmms-eval runs its OpenAI-compatible type against the served model, logging samples", () => {
    const c = config({ limit: 5, batchSize: 64 });
    const cmd = lmmsEvalCommand("python3", c, { served: "sft", baseUrl: "http://127.0.0.1:8000/v1" }, "t", {
      entry: "/opt/recipe/run_lmms_eval.py",
      tasksDir: "/w/tasks",
      outputDir: "/w/out",
    });
    expect(cmd.slice(0, 4)).toEqual([
      "python3",
      "/opt/recipe/run_lmms_eval.py",
      "--model",
      "recipe_openai_compatible",
    ]);
    expect(cmd[cmd.indexOf("--model_args") + 1]).toBe(
      "model_version=sft,base_url=http://127.0.0.1:8000/v1,api_key=EMPTY,max_new_tokens=49152,max_retries=5,timeout=10,request_timeout=3600",
    );
    expect(cmd).toContain("--log_samples");
    expect(cmd[cmd.indexOf("--batch_size") + 1]).toBe("64");
    expect(cmd[cmd.indexOf("--limit") + 1]).toBe("5");
    expect(cmd[cmd.indexOf("--include_path") + 1]).toBe("/w/tasks");
  });
});

describe("scoring and the report's table", () => {
  const verification = config().verification;

  it("scores an answer with the verifier, and asks the judge only what the rules leave undecided", async () => {
    const asked: string[] = [];
    const judge = async (i: { prediction: string }) => {
      asked.push(i.prediction);
      return { verdict: true, reason: "judge_1", model: "j" };
    };
    const right = await scoreAnswer(
      { response: "<think>x</think><answer>5</answer>", answer: "5" },
      verification,
      judge,
    );
    expect(right).toMatchObject({ correct: true, judged: false });
    const letter = await scoreAnswer(
      { response: "<think>x</think><answer>B</answer>", answer: "B", choices: ["circle", "square"] },
      verification,
      judge,
    );
    expect(letter.correct).toBe(true);
    const text = await scoreAnswer(
      {
        response: "<think>x</think><answer>the one on the left</answer>",
        answer: "the left one",
        question: "q",
      },
      verification,
      judge,
    );
    expect(text).toMatchObject({ correct: true, judged: true, reason: "match_judge" });
    expect(asked).toEqual(["the one on the left"]);
    const long = "word ".repeat(100);
    const tooLong = await scoreAnswer(
      { response: `<think>x</think><answer>${long}</answer>`, answer: "the left one" },
      verification,
      judge,
    );
    expect(tooLong).toMatchObject({ correct: false, judged: false, reason: "judge_prediction_too_long" });
    const down = await scoreAnswer(
      { response: "<think>x</think><answer>the one on the left</answer>", answer: "the left one" },
      verification,
      async () => {
        throw new Error("503");
      },
    );
    expect(down).toMatchObject({ correct: false, judged: false });
    expect(down.reason).toMatch(/^judge_unavailable/);
  });

  it("aggregates accuracy and format means and the judge's share; no answers is an error", () => {
    expect(
      aggregateVerdicts([
        { correct: true, format: 1, judged: false },
        { correct: false, format: 0.8, judged: true },
        { correct: true, format: 0, judged: true },
        { correct: false, format: 1, judged: false },
      ]),
    ).toEqual({ samples: 4, accuracy: 0.5, format: 0.7, judged: { asked: 2, correct: 1 } });
    expect(() => aggregateVerdicts([])).toThrow(/no scored answers/);
  });
});

describe("the evaluate launcher (dry run)", () => {
  function launch(root: string, runId: string, extra: Record<string, string> = {}) {
    return spawnSync(process.execPath, ["--import", "tsx", "batch-images/evaluate/src/main.ts"], {
      env: {
        ...process.env,
        RECIPE_BUCKET: `file://${root}`,
        RECIPE_RUN_ID: runId,
        RECIPE_WORKDIR: mkdtempSync(join(tmpdir(), "evaluate-")),
        RECIPE_EVAL_DRY_RUN: "1",
        ...extra,
      },
      encoding: "utf8",
      timeout: 60_000,
    });
  }

  it("validates the tasks and models and prints the vLLM and lmms-eval commands, writing nothing", async () => {
    const ctx = await sampleContext({
      evaluation: { enabled: true, tasks: ["recipe_mathvista_testmini", "recipe_mmmu_val"] },
    });
    await writeJson(ctx.store, keys.resolvedConfig(ctx.runId), resolveRunConfig({ ...ctx.config }));
    await writeJson(ctx.store, `${keys.modelPrefix(ctx.runId, "rl")}config.json`, {
      architectures: ["Qwen2_5_VLForConditionalGeneration"],
      num_attention_heads: 28,
    });
    const r = launch((ctx.store as FsStore).root, ctx.runId);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^models: base=\S+, rl=s3:\/\/local\/runs\/t1\/models\/rl\/$/m);
    expect(r.stdout).toContain("vLLM command: vllm serve");
    expect(r.stdout).toContain("--served-model-name rl --gpu-memory-utilization 0.7");
    expect(r.stdout.match(/^lmms-eval command: .*--log_samples/gm)).toHaveLength(4); // 2 models x 2 tasks
    expect(await ctx.store.exists(keys.success(ctx.runId, "evaluate"))).toBe(false);
  });

  it("exits 3 when a model names an architecture this image's transformers and vLLM cannot load", async () => {
    const ctx = await sampleContext({
      training: { sft: { enabled: true } },
      evaluation: { enabled: true, models: ["sft"] },
    });
    await writeJson(ctx.store, keys.resolvedConfig(ctx.runId), ctx.config);
    await writeJson(ctx.store, `${keys.modelPrefix(ctx.runId, "sft")}config.json`, {
      architectures: ["LlavaLlamaForCausalLM"],
    });
    const r = launch((ctx.store as FsStore).root, ctx.runId);
    expect(r.status).toBe(3);
    expect(r.stdout).toContain("is a LlavaLlamaForCausalLM, which the evaluate image cannot load");
  });

  it("exits 3 when evaluation.models names a model the run has not exported", async () => {
    const ctx = await sampleContext({
      training: { sft: { enabled: true } },
      evaluation: { enabled: true, models: ["sft"] },
    });
    await writeJson(ctx.store, keys.resolvedConfig(ctx.runId), ctx.config);
    const r = launch((ctx.store as FsStore).root, ctx.runId);
    expect(r.status).toBe(3);
    expect(r.stdout).toContain("runs/t1/models/sft/ has no config.json");
  });
});
