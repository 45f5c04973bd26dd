/**
 * The Lambda adapters, called in process with the event Step Functions delivers, against an S3
 * emulator over HTTP: the same code path as in AWS, S3 included.
 */
import { readFileSync } from "node:fs";
import { parquetWriteBuffer } from "hyparquet-writer";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../core/errors.ts";
import { keys } from "../../core/layout/index.ts";
import { readJson } from "../../core/shards/byte-store.ts";
import { readShard } from "../../core/shards/jsonl.ts";
import type { ShardStats } from "../../core/stages/stage.ts";
import { handlerEnvironment } from "../helpers/handler-env.ts";

const env = handlerEnvironment("recipe-handlers");

async function rejectsOf(key: string) {
  const out: { reason: string }[] = [];
  for await (const l of readShard(env.s3.store, key)) if (l.ok) out.push(l.value as { reason: string });
  return out.map((r) => r.reason);
}

describe("validate-config handler", () => {
  it("fails the run with failure.json listing every problem of a bad run.json", async () => {
    const { handle } = await import("../../lambdas/validate-config/handler.ts");
    await env.s3.store.write(
      keys.runConfig("bad-run"),
      JSON.stringify({
        runId: "bad-run",
        sources: { sft: [{ name: "x", uri: "a.jsonl", format: "csv", domain: "chart", license: "MIT" }] },
        teacher: { temperature: 9 },
        mixng: {},
      }),
    );

    await expect(handle({ runId: "bad-run" })).rejects.toBeInstanceOf(ConfigError);

    const failure = await readJson<{ problems: { path: string }[]; whatToDo: string }>(
      env.s3.store,
      keys.failure("bad-run"),
    );
    expect(failure?.problems.map((p) => p.path).sort()).toEqual([
      "$.mixng",
      "$.sources.sft[0].format",
      "$.teacher.temperature",
    ]);
    expect(failure?.whatToDo).toMatch(/Fix every problem/);
  });

  it("forgets an earlier execution's failure.json when the run starts again, so the next failure is the one recorded", async () => {
    // Found by npm run chaos: run-failure keeps the first failure recorded, so after one failed
    // execution every later one (and a later success, for recipe status) showed that old failure.
    const { handle } = await import("../../lambdas/validate-config/handler.ts");
    const { handle: recordFailure } = await import("../../lambdas/run-failure/handler.ts");
    const config = JSON.parse(readFileSync("examples/run.sample.json", "utf8"));
    await env.s3.store.write(keys.runConfig("again"), JSON.stringify({ ...config, runId: "again" }));
    await recordFailure({
      runId: "again",
      state: "PlanSftGeneration",
      error: { Error: "Runtime.ExitError" },
    });

    await handle({ runId: "again", execution: "again.2" });
    await recordFailure({ runId: "again", state: "Distill", error: { Error: "States.TaskFailed" } });

    const failure = await readJson<{ state: string; error: string }>(env.s3.store, keys.failure("again"));
    expect([failure?.state, failure?.error]).toEqual(["Distill", "States.TaskFailed"]);
  });

  it("refuses a run.json whose runId is not its folder", async () => {
    const { handle } = await import("../../lambdas/validate-config/handler.ts");
    await env.s3.store.write(keys.runConfig("folder-a"), readFileSync("examples/run.sample.json"));

    await expect(handle({ runId: "folder-a" })).rejects.toThrow(/runId must match/);
  });
});

describe("ingest over S3: bad rows become rejects with reasons", () => {
  it("ingests JSONL and Parquet sources, rejecting malformed lines, missing columns and corrupt images", async () => {
    const png = readFileSync("examples/sample/images/bar-0.png");
    await env.s3.store.write("sources/q/images/ok.png", png);
    await env.s3.store.write("sources/q/images/corrupt.png", png.subarray(0, 100));
    const lines = [
      JSON.stringify({
        question: "What is shown?",
        answer: "<answer>fig</answer>",
        images: ["images/ok.png"],
      }),
      "{ not json",
      JSON.stringify({ answer: "3" }),
      JSON.stringify({ question: "Q?", images: [] }),
      JSON.stringify({ question: "Broken image?", answer: "1", images: ["images/corrupt.png"] }),
      JSON.stringify({ question: "Missing image?", answer: "1", images: ["images/none.png"] }),
      JSON.stringify({ question: "Inline?", answer: "2", images: [{ bytes: png.toString("base64") }] }),
      JSON.stringify({ question: "Bad choices?", answer: "A", choices: "A,B" }),
      "",
    ];
    await env.s3.store.write("sources/q/part-0.jsonl", lines.join("\n"));
    const parquet = parquetWriteBuffer({
      columnData: [
        { name: "prompt", data: ["2+2?", "3+3?", ""], type: "STRING" },
        { name: "solution", data: ["4", "6", "1"], type: "STRING" },
      ],
    });
    await env.s3.store.write("sources/p/data.parquet", new Uint8Array(parquet));
    await env.s3.store.write(
      keys.runConfig("ing"),
      JSON.stringify({
        runId: "ing",
        sources: {
          sft: [
            { name: "q", uri: "q/", format: "jsonl", domain: "general_vqa", license: "CC0-1.0" },
            {
              name: "p",
              uri: "p/",
              format: "parquet",
              domain: "text_math",
              license: "CC0-1.0",
              columns: { question: "prompt", answer: "solution" },
            },
          ],
        },
      }),
    );
    const { handle: validate } = await import("../../lambdas/validate-config/handler.ts");
    const { handle: plan } = await import("../../lambdas/plan-ingest/handler.ts");
    const { handle: ingest } = await import("../../lambdas/ingest-source/handler.ts");
    await validate({ runId: "ing" });

    const planned = await plan({ runId: "ing", branch: "sft" });
    const items = (await readJson<{ shard: number }[]>(env.s3.store, planned.manifest.key))!;
    const results = [];
    for (const item of items) results.push(await ingest({ runId: "ing", item }));
    const again = await ingest({ runId: "ing", item: items[0] });

    expect(planned.shards).toBe(2);
    expect(results.map((r) => [r.in, r.out, r.rejected])).toEqual([
      [8, 2, 6],
      [3, 2, 1],
    ]);
    expect((await rejectsOf(keys.rejects("ing", "ingest-sft", 0))).sort()).toEqual(
      [
        "corrupt_image",
        "image_not_found",
        "invalid_choices",
        "invalid_json",
        "missing_answer",
        "missing_question",
      ].sort(),
    );
    expect(await rejectsOf(keys.rejects("ing", "ingest-sft", 1))).toEqual(["missing_question"]);
    // A missing image is named as the source gave it, with the file and line of its record.
    const missing = [];
    for await (const l of readShard(env.s3.store, keys.rejects("ing", "ingest-sft", 0)))
      if (l.ok && (l.value as { reason: string }).reason === "image_not_found") missing.push(l.value);
    expect(missing).toEqual([
      expect.objectContaining({ origin: "sources/q/part-0.jsonl:6", detail: "images/none.png" }),
    ]);
    const stats = await readJson<ShardStats>(env.s3.store, keys.stats("ing", "ingest-sft", 0));
    expect(stats?.in).toBe(stats!.out + stats!.rejected);
    expect(again.skipped).toBe(true);
    const questions = [];
    for await (const l of readShard(env.s3.store, keys.shard("ing", "ingest-sft", 0))) {
      if (l.ok) questions.push(l.value as { answer: string; images: unknown[] });
    }
    expect(questions[0]).toMatchObject({
      answer: "fig",
      images: [expect.objectContaining({ mediaType: "image/png", width: 360 })],
    });
    expect(
      await env.s3.store.exists(keys.image((questions[0]!.images[0] as { sha256: string }).sha256)),
    ).toBe(true);
  });

  it("treats an empty source file as a shard with nothing in it", async () => {
    await env.s3.store.write("sources/empty/part.jsonl", "");
    await env.s3.store.write(
      keys.runConfig("empty"),
      JSON.stringify({
        runId: "empty",
        sources: { sft: [{ name: "e", uri: "empty/", format: "jsonl", domain: "chart", license: "MIT" }] },
      }),
    );
    const { handle: validate } = await import("../../lambdas/validate-config/handler.ts");
    const { handle: plan } = await import("../../lambdas/plan-ingest/handler.ts");
    const { handle: ingest } = await import("../../lambdas/ingest-source/handler.ts");
    await validate({ runId: "empty" });
    const planned = await plan({ runId: "empty", branch: "sft" });
    const [item] = (await readJson<{ shard: number }[]>(env.s3.store, planned.manifest.key))!;

    const result = await ingest({ runId: "empty", item });

    expect(result).toMatchObject({ in: 0, out: 0, rejected: 0 });
  });

  it("rejects an event that is not the shape the state machine sends", async () => {
    const { handle } = await import("../../lambdas/ingest-source/handler.ts");

    await expect(handle({ runId: "x", item: { shard: -1 } })).rejects.toThrow(/bad event/);
  });
});
