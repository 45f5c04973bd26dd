/**
 * Test helpers for the pipeline: a run context over a temporary filesystem store with the sample
 * sources, and a deterministic stand-in for the GPU `generate` job (the real worker lives in
 * batch-images/generate; these tests are about the CPU stages that read its output).
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { resolveRunConfig } from "../../core/config/index.ts";
import type { RunConfigInput } from "../../core/config/schema.ts";
import { keys, type Stage } from "../../core/layout/index.ts";
import type { RunContext } from "../../core/pipeline/context.ts";
import { readManifest } from "../../core/pipeline/context.ts";
import { type GenerateItem, loadQuestionSlice } from "../../core/pipeline/steps.ts";
import type { Trace } from "../../core/records/index.ts";
import { userContent } from "../../core/records/index.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { runShard } from "../../core/stages/stage.ts";

/** A run over the sample sources in a new temporary store (or in `dir`), with run.json written. */
export async function sampleContext(
  overrides: Partial<RunConfigInput> = {},
  dir?: string,
): Promise<RunContext> {
  dir ??= await mkdtemp(join(tmpdir(), "recipe-pipeline-"));
  const store = new FsStore(dir);
  const examples = new FsStore(resolve("examples"));
  const base = {
    runId: "t1",
    sources: {
      sft: [
        {
          name: "sample-vqa",
          uri: "sample/sft-vqa.jsonl",
          format: "jsonl",
          domain: "general_vqa",
          license: "CC0-1.0",
        },
        {
          name: "sample-text-math",
          uri: "sample/sft-text-math.jsonl",
          format: "jsonl",
          domain: "text_math",
          license: "CC0-1.0",
        },
      ],
      rl: [
        {
          name: "sample-rl",
          uri: "sample/rl-questions.jsonl",
          format: "jsonl",
          domain: "text_math",
          license: "CC0-1.0",
        },
      ],
    },
    teacher: { samplesPerQuestion: 4 },
    verification: { judge: { enabled: false } },
    ...overrides,
  } as RunConfigInput;
  const config = resolveRunConfig(base);
  await store.write(keys.runConfig(config.runId), JSON.stringify(base));
  return { store, runId: config.runId, config, sources: (uri) => ({ store: examples, key: uri }) };
}

/** How the stand-in teacher answers sample `k` of a question. */
export function fakeResponse(
  gold: string,
  k: number,
): { response: string; finishReason: Trace["finishReason"] } {
  switch (k % 4) {
    case 0:
      return {
        response: `<think>Reading the figure carefully, step ${k}.</think><answer>${gold}</answer>`,
        finishReason: "stop",
      };
    case 1:
      return {
        response: `<think>Another line of reasoning, attempt ${k}, checks twice.</think><answer>\\boxed{${gold}}</answer>`,
        finishReason: "stop",
      };
    case 2:
      return {
        response: `<think>A careless slip ${k}.</think><answer>definitely not ${gold}x</answer>`,
        finishReason: "stop",
      };
    default:
      return { response: `I think it is ${gold}`, finishReason: "length" };
  }
}

/** Writes generate output shards the way the Batch job does: one per manifest item. */
export async function fakeGenerate(
  ctx: RunContext,
  planStage: Stage,
  outStage: Stage,
  samples: number,
  model = "fake/teacher",
) {
  const items = await readManifest<GenerateItem>(ctx.store, keys.manifest(ctx.runId, planStage));
  for (const item of items) {
    const questions = await loadQuestionSlice(ctx.store, item);
    await runShard(ctx.store, ctx.runId, outStage, item.shard, async (run) => {
      for (const q of questions) {
        for (let k = 0; k < samples; k++) {
          run.seen();
          const { response, finishReason } = fakeResponse(q.answer, k);
          const trace: Trace = {
            questionId: q.id,
            sampleIndex: k,
            model,
            messages: [{ role: "user", content: userContent(q) }],
            response,
            finishReason,
            usage: { promptTokens: 10, completionTokens: response.length },
          };
          run.count("responses");
          run.count("completion_tokens", response.length);
          await run.emit(trace);
        }
      }
    });
  }
  return items.length;
}
