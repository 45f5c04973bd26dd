/**
 * The embedded runtime end to end: the synthesized state machine, an S3 emulator over HTTP, the Lambda
 * functions in their own workers, Batch jobs as child processes, IAM enforced, the replay teacher.
 */
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { TransientError } from "../../core/errors.ts";
import { keys, STAGES } from "../../core/layout/index.ts";
import { listAll, readJson } from "../../core/shards/byte-store.ts";
import { readShard } from "../../core/shards/jsonl.ts";
import type { ShardStats, StageSummary } from "../../core/stages/stage.ts";
import {
  executionArnFor,
  type LocalOptions,
  type LocalRuntime,
  startLocalRuntime,
  uploadSources,
} from "../../local/runtime.ts";

const SAMPLE = "examples/run.sample.json";
let rt: LocalRuntime | null = null;

afterEach(async () => {
  await rt?.stop();
  rt = null;
});

async function runSample(options: LocalOptions = {}, text = readFileSync(SAMPLE, "utf8"), runId = "sample") {
  rt = await startLocalRuntime({ dataDir: mkdtempSync(join(tmpdir(), "recipe-it-")), ...options });
  const config = JSON.parse(readFileSync(SAMPLE, "utf8"));
  await uploadSources(
    rt.s3,
    SAMPLE,
    [...config.sources.sft, ...config.sources.rl].map((s: { uri: string }) => s.uri),
  );
  await rt.s3.store.write(keys.runConfig(runId), text);
  const execution = await rt.waitFor(executionArnFor(runId));
  return { rt, execution };
}

/**
 * A user's own folder: the sample's files linked in, extra JSON-lines files beside them, and a
 * run.json (the sample's, with `edit` applied). Returns the folder, the run.json path and the config.
 */
type SourceJson = { uri: string } & Record<string, unknown>;
type RunJson = { runId: string; sources: { sft: SourceJson[]; rl: SourceJson[] } } & Record<string, unknown>;

function userFolder(
  prefix: string,
  edit: (config: RunJson) => void = () => undefined,
  files: Record<string, unknown[]> = {},
) {
  const work = mkdtempSync(join(tmpdir(), prefix));
  symlinkSync(resolve("examples/sample"), join(work, "sample"));
  for (const [name, rows] of Object.entries(files))
    writeFileSync(join(work, name), `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
  const config = JSON.parse(readFileSync(SAMPLE, "utf8")) as RunJson;
  edit(config);
  const file = join(work, "run.json");
  writeFileSync(file, JSON.stringify(config));
  return { work, file, config };
}

async function lines(key: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for await (const l of readShard(rt!.s3.store, key)) if (l.ok) out.push(l.value as Record<string, unknown>);
  return out;
}

describe("the sample run on the embedded runtime", () => {
  it("writes datasets, rejects with reasons, stats, report and data cards, and its counts add up", async () => {
    const { execution } = await runSample();

    expect(execution.status, execution.cause).toBe("SUCCEEDED");
    // Every call each function, job and the state machine made was allowed by the template's IAM.
    expect(rt!.account.denials).toEqual([]);
    const store = rt!.s3.store;
    for (const key of (await listAll(store, "runs/sample/")).filter((k) => /\/stats\/\d+\.json$/.test(k))) {
      const s = (await readJson<ShardStats>(store, key))!;
      expect(s.in, key).toBe(s.out + s.rejected);
    }
    const done = new Map<string, StageSummary>();
    for (const stage of STAGES) {
      const s = await readJson<StageSummary>(store, keys.success("sample", stage));
      if (s) done.set(stage, s);
    }
    expect([...done.keys()]).toEqual(
      expect.arrayContaining([
        "ingest-sft",
        "dedup-sft",
        "distill",
        "verify-traces",
        "select-and-mix",
        "write-sft-dataset",
        "estimate-difficulty",
        "filter-rl",
        "write-rl-dataset",
        "report",
      ]),
    );
    expect(done.get("dedup-sft")!.in).toBe(done.get("ingest-sft")!.out);
    expect(done.get("verify-traces")!.in).toBe(done.get("distill")!.out);
    expect(done.get("select-and-mix")!.in).toBe(done.get("verify-traces")!.out);
    expect(done.get("write-sft-dataset")!.out).toBe(done.get("select-and-mix")!.out);
    // Every filter visibly acts on the replay teacher's recordings.
    expect(Object.keys(done.get("verify-traces")!.reasons)).toEqual(
      expect.arrayContaining(["answer_mismatch", "bad_format", "repetitive_response", "truncated"]),
    );
    const rejects = await lines(keys.rejects("sample", "verify-traces", 0));
    expect(rejects.every((r) => typeof r.reason === "string" && /^[a-z_]+$/.test(String(r.reason)))).toBe(
      true,
    );
    const card = (await store.readBytes(keys.dataset("sample", "sft", "README.md")))!.toString();
    expect(card).toContain("Replay teacher");
    const report = (await store.readBytes(keys.report("sample", "report.html")))!.toString();
    expect(report).toContain("Replay teacher");
    expect((await lines(keys.dataset("sample", "sft", "sft.jsonl.gz"))).length).toBe(
      done.get("write-sft-dataset")!.out,
    );
    expect((await listAll(store, "runs/sample/datasets/rl/")).some((k) => k.endsWith(".parquet"))).toBe(true);
  });

  it("starts nothing when the same run.json is uploaded again", async () => {
    const { rt } = await runSample();
    const before = rt.sfn.executions.size;

    await rt.s3.store.write(keys.runConfig("sample"), readFileSync(SAMPLE, "utf8"));
    await new Promise((r) => setTimeout(r, 500));

    expect(rt.sfn.executions.size).toBe(before);
    expect(rt.triggers.map((t) => t.outcome)).toEqual(["started", "already_started"]);
  });

  it("reports a changed run.json for an existing run instead of ignoring it", async () => {
    const { rt } = await runSample();
    const changed = JSON.parse(readFileSync(SAMPLE, "utf8"));
    changed.mixing.seed = 8;

    await rt.s3.store.write(keys.runConfig("sample"), JSON.stringify(changed));
    await new Promise((r) => setTimeout(r, 500));

    expect(rt.triggers.map((t) => t.outcome)).toEqual(["started", "conflict"]);
    const conflict = await readJson<{ message: string }>(rt.s3.store, "runs/sample/upload-conflict.json");
    expect(conflict?.message).toMatch(/new run id/);
  });

  it("recomputes only the stage whose _SUCCESS was deleted, with identical output", async () => {
    const { rt } = await runSample();
    const store = rt.s3.store;
    const mixed = await listAll(store, keys.shardsPrefix("sample", "select-and-mix"));
    const before = await Promise.all(mixed.map((k) => store.readBytes(k)));
    const teacherCalls = rt.replay!.requests;
    for (const k of await listAll(store, keys.stagePrefix("sample", "select-and-mix"))) await store.delete(k);

    const again = await rt.runner.execute({ runId: "sample" });

    expect(again.status, again.cause).toBe("SUCCEEDED");
    expect(rt.replay!.requests).toBe(teacherCalls);
    const after = await Promise.all(mixed.map((k) => store.readBytes(k)));
    expect(after.map((b, i) => b?.equals(before[i]!))).toEqual(before.map(() => true));
  });
});

describe("faults", () => {
  it("retries a handler that throws a transient error twice, and succeeds", async () => {
    let failures = 0;
    const { execution } = await runSample({
      beforeStep: (step) => {
        if (step === "resolve-duplicates" && failures < 2) {
          failures++;
          throw new TransientError("throttled (injected)");
        }
      },
    });

    expect(failures).toBe(2);
    expect(execution.status, execution.cause).toBe("SUCCEEDED");
  });

  it("retries a Batch child killed mid-shard, which resumes without duplicates", async () => {
    let killedMidRun = false;
    const { execution } = await runSample({
      // The teacher answers 20 distill requests, then holds the rest: the child is provably mid-shard.
      // One child at a time, so those 20 answers are all child 0's.
      teacherHold: { model: "replay/sample-teacher", count: 20 },
      batchParallelism: 1,
      onBatchChild: (child, index, attempt, jobName) => {
        if (!jobName.startsWith("Distill") || index !== 0 || attempt !== 1) return;
        const timer = setInterval(() => {
          if (rt!.replay!.held === 0 || child.exitCode !== null) return;
          clearInterval(timer);
          // Give the answered requests a moment to reach the cache, then kill and let the rest through.
          setTimeout(() => {
            killedMidRun = child.exitCode === null;
            child.kill("SIGKILL");
            rt!.replay!.release();
          }, 300);
        }, 10);
      },
    });

    expect(killedMidRun).toBe(true);
    const failure = await readJson(rt!.s3.store, keys.failure("sample"));
    expect(execution.status, JSON.stringify(failure)).toBe("SUCCEEDED");
    const traces = await lines(keys.shard("sample", "distill", 0));
    expect(new Set(traces.map((t) => `${t.questionId}:${t.sampleIndex}`)).size).toBe(traces.length);
    const stats = (await readJson<StageSummary>(rt!.s3.store, keys.success("sample", "distill")))!;
    expect(stats.out).toBe(stats.in);
    expect(stats.extra.cache_hits).toBeGreaterThan(0);
  });

  it("a shard left without a result (a tolerated Map failure) fails the stage, and starting the run again computes only that shard", async () => {
    let dropped = false;
    const { execution } = await runSample({
      // What a Map child that failed within toleratedFailurePercentage leaves: no stats for its shard.
      beforeStep: async (step, event) => {
        if (step !== "finish-stage" || dropped || (event as { stage: string }).stage !== "ingest-sft") return;
        dropped = true;
        await rt!.s3.store.delete(keys.stats("sample", "ingest-sft", 1));
      },
    });

    expect(execution.status).toBe("FAILED");
    const failure = JSON.stringify(await readJson(rt!.s3.store, keys.failure("sample")));
    expect(failure).toContain("StageIncomplete");
    expect(failure).toContain("ingest-sft: 1 of");
    expect(failure).toContain("(shards 1)");
    expect(
      await readJson(rt!.s3.store, `${keys.stagePrefix("sample", "ingest-sft")}missing.json`),
    ).toMatchObject({
      missing: [1],
    });
    expect(await rt!.s3.store.exists(keys.success("sample", "ingest-sft"))).toBe(false);
    const shard0 = await rt!.s3.store.readBytes(keys.stats("sample", "ingest-sft", 0));

    // Start it again (the same run.json): attempt 2 computes shard 1 and leaves shard 0 as it was.
    await rt!.s3.store.write(keys.runConfig("sample"), readFileSync(SAMPLE, "utf8"));
    const again = await rt!.waitFor(executionArnFor("sample.2"));

    expect(again.status, again.cause).toBe("SUCCEEDED");
    expect(await rt!.s3.store.exists(keys.stats("sample", "ingest-sft", 1))).toBe(true);
    expect((await rt!.s3.store.readBytes(keys.stats("sample", "ingest-sft", 0)))!.equals(shard0!)).toBe(true);
    expect(
      await readJson(rt!.s3.store, `${keys.stagePrefix("sample", "ingest-sft")}missing.json`),
    ).toMatchObject({
      missing: [],
    });
  });

  it("a GPU job attempt that runs past its timeout is killed and not retried, as Batch does", async () => {
    const attempts: number[] = [];
    const { execution } = await runSample({
      // The distill job's attempt timeout (batch.jobTimeoutHours, at least an hour) cut to 50 ms in the
      // state machine's submission (Batch's floor is 60 s; the rule is the same).
      editTemplate: (t) => {
        const sm = Object.values(t.Resources).find((r) => r.Type === "AWS::StepFunctions::StateMachine")!;
        const parts = (sm.Properties!.DefinitionString as { "Fn::Join": [string, unknown[]] })["Fn::Join"][1];
        for (let i = 0; i < parts.length; i++)
          if (typeof parts[i] === "string")
            parts[i] = (parts[i] as string).replaceAll(
              '"AttemptDurationSeconds.$":"$.config.jobTimeoutSeconds"',
              '"AttemptDurationSeconds":0.05',
            );
      },
      batchParallelism: 1,
      onBatchChild: (_child, _index, attempt, jobName) => {
        if (jobName.startsWith("Distill")) attempts.push(attempt);
      },
    });

    expect(execution.status).toBe("FAILED");
    // The first child's only attempt: killed, not retried, and the job failed.
    expect(attempts[0]).toBe(1);
    expect(attempts.filter((a) => a > 1)).toEqual([]);
    const failure = JSON.stringify(await readJson(rt!.s3.store, keys.failure("sample")));
    expect(failure).toContain("Distill");
    expect(failure).toContain("ran past the job's attempt timeout");
  });

  it("fails a malformed run.json at once with failure.json listing every problem", async () => {
    const bad = JSON.stringify({
      runId: "broken",
      sources: { sft: [{ name: "x", uri: "a.jsonl", format: "csv", domain: "chart", license: "MIT" }] },
      teacher: { temperature: 7 },
      mixng: {},
    });

    const { execution } = await runSample({}, bad, "broken");

    expect(execution.status).toBe("FAILED");
    const failure = await readJson<{ problems: { path: string }[]; state: string }>(
      rt!.s3.store,
      keys.failure("broken"),
    );
    expect(failure?.state).toBe("ValidateConfig");
    expect(failure?.problems.map((p) => p.path).sort()).toEqual([
      "$.mixng",
      "$.sources.sft[0].format",
      "$.teacher.temperature",
    ]);
    expect(await rt!.s3.store.exists(keys.success("broken", "ingest-sft"))).toBe(false);
  });
});

describe("IAM on the embedded runtime, enforced from the synthesized template", () => {
  type Template = Parameters<NonNullable<LocalOptions["editTemplate"]>>[0];
  const policyOfRole = (t: Template, rolePrefix: string) =>
    Object.values(t.Resources).find(
      (r) =>
        r.Type === "AWS::IAM::Policy" && JSON.stringify(r.Properties?.Roles ?? []).includes(`"${rolePrefix}`),
    )!.Properties!.PolicyDocument as { Statement: { Action: string | string[] }[] };

  it("a grant removed from a function's role fails the run with AccessDenied naming the principal, the action and the resource", async () => {
    const { execution } = await runSample({
      editTemplate: (t) => {
        const doc = policyOfRole(t, "StepwritesftdatasetFnServiceRole");
        doc.Statement = doc.Statement.filter((s) => ![s.Action].flat().includes("s3:PutObject"));
      },
    });

    expect(execution.status).toBe("FAILED");
    const denial = rt!.account.denials[0]!;
    expect(denial.principal).toMatch(/:role\/RecipePipeline-StepwritesftdatasetFnServiceRole/);
    expect(denial.action).toBe("s3:PutObject");
    expect(denial.resource).toMatch(/^arn:aws:s3:::recipe-local\/runs\/sample\/datasets\/sft\//);
    // What the user sees in failure.json: the failed state and AWS's own message.
    const failure = JSON.stringify(await readJson(rt!.s3.store, keys.failure("sample")));
    expect(failure).toContain("WriteSftDataset");
    expect(failure).toContain("AccessDenied");
    expect(failure).toContain("StepwritesftdatasetFnServiceRole");
    expect(failure).toContain("is not authorized to perform: s3:PutObject");
    // Nothing that needed the grant was written; the stages before it were.
    expect(await rt!.s3.store.exists(keys.success("sample", "distill"))).toBe(true);
    expect(await listAll(rt!.s3.store, "runs/sample/datasets/sft/")).toEqual([]);
  });

  it("without its Batch policy the state machine cannot submit the GPU jobs (the first-deploy defect)", async () => {
    const { execution } = await runSample({
      editTemplate: (t) => {
        for (const [id, r] of Object.entries(t.Resources))
          if (r.Type === "AWS::IAM::Policy" && id.startsWith("PipelineBatchJobsPolicy"))
            delete t.Resources[id];
      },
    });

    expect(execution.status).toBe("FAILED");
    const denial = rt!.account.denials[0]!;
    expect(denial.principal).toMatch(/:role\/RecipePipeline-PipelineStateMachineRole/);
    expect(denial.action).toBe("batch:SubmitJob");
    expect(denial.resource).toBe("arn:aws:batch:us-east-1:000000000000:job-queue/RecipePipeline-gpu");
    expect(await rt!.s3.store.exists(keys.success("sample", "distill"))).toBe(false);
  });
});

describe("recipe run --fresh", () => {
  it("forgets only its own run: another run's datasets and the generation cache stay", async () => {
    const { runCommand } = await import("../../local/cli/run.ts");
    const { startS3Emulator } = await import("../../local/s3-emulator.ts");
    const { LOCAL_BUCKET } = await import("../../local/runtime.ts");
    const { work } = userFolder("recipe-fresh-");
    const config = (runId: string) => userFolder("recipe-fresh-run-", (c) => (c.runId = runId)).file;
    const dataDir = join(work, "data");
    const quiet = () => undefined;
    const run = (runId: string, fresh: boolean) =>
      runCommand(config(runId), { dataDir, parallelism: "2", fresh }, quiet, quiet);
    const objects = async () => {
      const s3 = await startS3Emulator(LOCAL_BUCKET, join(dataDir, "s3"));
      try {
        const all = await listAll(s3.store, "");
        return {
          a: all.filter((k) => k.startsWith("runs/first/datasets/")).length,
          b: all.filter((k) => k.startsWith("runs/second/datasets/")).length,
          cache: all.filter((k) => k.startsWith("cache/generate/")).length,
        };
      } finally {
        await s3.stop();
      }
    };

    expect(await run("first", false)).toBe(0);
    const afterFirst = await objects();
    expect(await run("second", true)).toBe(0);
    const afterSecond = await objects();
    expect(await run("first", true)).toBe(0);
    const afterRefresh = await objects();

    expect(afterFirst.a).toBeGreaterThan(0);
    expect(afterFirst.cache).toBeGreaterThan(0);
    expect(afterSecond).toEqual({ a: afterFirst.a, b: afterFirst.a, cache: afterFirst.cache });
    expect(afterRefresh).toEqual(afterSecond);
  }, 240_000);
});

describe("a traces source", () => {
  it("goes straight to verification: the teacher gets no request for its questions", async () => {
    const { startFakeOpenAI } = await import("../helpers/fake-openai.ts");
    const traces = Array.from({ length: 6 }, (_, i) => ({
      question: `What is ${1000 + i} plus one, as a number?`,
      answer: String(1001 + i),
      response: `<think>Adding one to ${1000 + i} gives ${1001 + i}.</think><answer>${1001 + i}</answer>`,
    }));
    const { file, config } = userFolder(
      "recipe-traces-",
      (c) => {
        c.runId = "traces";
        c.sources.sft.push({
          name: "own-traces",
          uri: "own-traces.jsonl",
          format: "jsonl",
          kind: "traces",
          domain: "text_math",
          license: "CC0-1.0",
        });
      },
      { "own-traces.jsonl": traces },
    );
    const prompts: string[] = [];
    const teacher = await startFakeOpenAI({
      answer: (text) => {
        prompts.push(text);
        return "<think>Thinking it over.</think><answer>42</answer>";
      },
    });
    try {
      rt = await startLocalRuntime({
        dataDir: mkdtempSync(join(tmpdir(), "recipe-it-")),
        teacherUrl: teacher.url,
        teacherModel: "fake-teacher",
      });
      await uploadSources(
        rt.s3,
        file,
        config.sources.sft.concat(config.sources.rl).map((s: { uri: string }) => s.uri),
      );
      await rt.s3.store.write(keys.runConfig("traces"), JSON.stringify(config));
      const execution = await rt.waitFor(executionArnFor("traces"));

      expect(execution.status).toBe("SUCCEEDED");
      expect(prompts.length).toBeGreaterThan(0); // the sample's questions were distilled
      for (const t of traces) expect(prompts.some((p) => p.includes(t.question))).toBe(false);
      const summary = async (stage: (typeof STAGES)[number]) =>
        (await readJson<StageSummary>(rt!.s3.store, keys.success("traces", stage)))!;
      // Every trace was verified, beside the distilled ones, and they reach the SFT set.
      expect((await summary("verify-traces")).in).toBe((await summary("distill")).out + traces.length);
      const sft = await lines(keys.dataset("traces", "sft", "sft.jsonl.gz"));
      expect(sft.some((r) => JSON.stringify(r).includes("plus one, as a number"))).toBe(true);
    } finally {
      await teacher.close();
    }
  }, 240_000);
});

describe("an RL source that carries its own pass rates", () => {
  it("with rl.passRateFrom source makes no rollout request and writes avg_reward from the source", async () => {
    const { startFakeOpenAI } = await import("../helpers/fake-openai.ts");
    const rated = Array.from({ length: 12 }, (_, i) => ({
      problem: `A shelf holds ${i + 2} rows of ${i + 5} jars. How many jars are on it?`,
      answer: String((i + 2) * (i + 5)),
      // Two never solved, two always solved: the band drops them.
      PassRate_32BTrained: i < 2 ? 0 : i < 4 ? 1 : (i % 7) / 8 + 0.125,
    }));
    const { file, config } = userFolder(
      "recipe-rated-",
      (c) => {
        c.runId = "rated";
        c.sources.sft = [];
        c.sources.rl = [
          {
            name: "virl-like",
            uri: "rated.jsonl",
            format: "jsonl",
            domain: "text_math",
            license: "CC0-1.0",
            columns: { question: "problem", passRate: "PassRate_32BTrained" },
          },
        ];
        (c as Record<string, unknown>).rl = { passRateFrom: "source", rolloutsPerQuestion: 4 };
      },
      { "rated.jsonl": rated },
    );
    const teacher = await startFakeOpenAI();
    try {
      rt = await startLocalRuntime({
        dataDir: mkdtempSync(join(tmpdir(), "recipe-it-")),
        teacherUrl: teacher.url,
        teacherModel: "fake-policy",
      });
      await uploadSources(rt.s3, file, ["rated.jsonl"]);
      await rt.s3.store.write(keys.runConfig("rated"), JSON.stringify(config));
      const execution = await rt.waitFor(executionArnFor("rated"));

      expect(execution.status, JSON.stringify(await readJson(rt.s3.store, keys.failure("rated")))).toBe(
        "SUCCEEDED",
      );
      expect(teacher.requests).toEqual([]);
      const write = (await readJson<StageSummary>(rt.s3.store, keys.success("rated", "write-rl-dataset")))!;
      expect([write.in, write.out, write.reasons]).toEqual([12, 8, { never_solved: 2, always_solved: 2 }]);
      const { parquetReadObjects } = await import("hyparquet");
      const parts = (write as StageSummary & { files: { parquet: string[] } }).files.parquet;
      const bytes = (await rt.s3.store.readBytes(parts[0]!))!;
      const buffer = new Uint8Array(bytes).buffer;
      const rows = (await parquetReadObjects({ file: buffer })) as {
        avg_reward: number;
        extra_info: { question: string };
      }[];
      const expected = new Map(rated.map((r) => [r.problem, r.PassRate_32BTrained]));
      expect(rows).toHaveLength(8);
      for (const r of rows) expect(r.avg_reward).toBe(expected.get(r.extra_info.question));
    } finally {
      await teacher.close();
    }
  }, 240_000);
});

describe("recipe rejects", () => {
  it("lists a run's rejects with the source file and line, filtered by stage and reason", async () => {
    const { rejectsCommand } = await import("../../local/cli/rejects.ts");
    const dataDir = mkdtempSync(join(tmpdir(), "recipe-rejects-"));
    await runSample({ dataDir });
    await rt!.stop();
    rt = null;
    const list = async (opts: { stage?: string; reason?: string; limit?: string }) => {
      let out = "";
      const code = await rejectsCommand(
        "sample",
        { dataDir, limit: "1000", ...opts },
        (t) => (out += t),
        () => undefined,
      );
      return {
        code,
        rows: out
          .trim()
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l)),
      };
    };

    const ingest = await list({ stage: "ingest-sft" });
    const dedup = await list({ stage: "dedup-sft" });
    const mismatches = await list({ reason: "answer_mismatch", limit: "5" });

    expect(ingest.code).toBe(0);
    expect(ingest.rows.length).toBeGreaterThan(0);
    for (const r of [...ingest.rows, ...dedup.rows])
      expect(r.origin, JSON.stringify(r)).toMatch(/^sources\/sample\/sft-[a-z-]+\.jsonl:\d+$/);
    expect(dedup.rows.length).toBeGreaterThan(0);
    expect(mismatches.rows).toHaveLength(5);
    expect(new Set(mismatches.rows.map((r) => `${r.stage} ${r.reason}`))).toEqual(
      new Set(["verify-traces answer_mismatch"]),
    );
  }, 240_000);
});

describe("a run that produces nothing useful", () => {
  it("fails with the reasons when the SFT set is empty, and says once that the replay teacher had no recordings", async () => {
    const { runCommand } = await import("../../local/cli/run.ts");
    const own = Array.from({ length: 5 }, (_, i) => ({
      question: `How many sides does shape ${i} have?`,
      answer: String(i + 3),
    }));
    const { work, file } = userFolder(
      "recipe-empty-",
      (c) => {
        c.runId = "own-questions";
        c.sources.sft = [
          { name: "own", uri: "own.jsonl", format: "jsonl", domain: "text_math", license: "CC0-1.0" },
        ];
      },
      { "own.jsonl": own },
    );
    let out = "";
    let err = "";

    const code = await runCommand(
      file,
      { dataDir: join(work, "data"), parallelism: "2" },
      (t) => (out += t),
      (t) => (err += t),
    );

    expect(code).toBe(1);
    expect(out).not.toContain("SUCCEEDED");
    expect(err).toMatch(
      /the SFT set is empty: no trace passed verification and selection\. verify-traces: \d+ in, 0 out \(answer_mismatch \d+/,
    );
    expect(err.match(/the replay teacher had no recording for \d+ of \d+ requests/g)).toHaveLength(1);
    expect(err).toContain("--teacher-url");
  }, 240_000);
});

describe("a recipe run killed mid-distill", () => {
  it("resumes with the same command, and no answered request is asked again", async () => {
    const { spawn } = await import("node:child_process");
    const { readdirSync } = await import("node:fs");
    const { startFakeOpenAI } = await import("../helpers/fake-openai.ts");
    const HOLD_AFTER = 20;
    const teacher = await startFakeOpenAI({
      holdAfter: HOLD_AFTER,
      answer: () => "<think>Working it out carefully.</think><answer>42</answer>",
    });
    const dataDir = mkdtempSync(join(tmpdir(), "recipe-kill-"));
    const args = [
      "bin/recipe.mjs",
      "run",
      SAMPLE,
      "--teacher-url",
      teacher.url,
      "--teacher-model",
      "fake-teacher",
      "--data-dir",
      dataDir,
      "--parallelism",
      "1",
    ];
    const cacheEntries = () => {
      try {
        const files = readdirSync(join(dataDir, "s3", "recipe-local", "cache", "generate"), {
          recursive: true,
        }).map(String);
        const complete = (suffix: string) => files.filter((f) => f.endsWith(suffix)).length;
        return Math.min(complete("._S3rver_object"), complete("._S3rver_metadata.json"));
      } catch {
        return 0;
      }
    };
    const exited = (child: ReturnType<typeof spawn>) =>
      new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    try {
      // The first run is its own process group, so the kill takes its Batch children with it.
      const first = spawn(process.execPath, args, { detached: true, stdio: "ignore" });
      const firstExit = exited(first);
      for (let waited = 0; teacher.answered < HOLD_AFTER || cacheEntries() < HOLD_AFTER; waited += 200) {
        if (waited > 180_000)
          throw new Error(`stalled: ${teacher.answered} answered, ${cacheEntries()} cached`);
        await new Promise((r) => setTimeout(r, 200));
      }
      process.kill(-first.pid!, "SIGKILL");
      await firstExit;
      teacher.release();
      const answeredBefore = teacher.answered;

      const second = spawn(process.execPath, args, { stdio: "ignore" });
      const code = await exited(second);

      expect(code).toBe(0);
      expect(teacher.answered).toBeGreaterThan(answeredBefore);
      const askedTwice = [...teacher.answersPerRequest].filter(([, n]) => n > 1);
      expect(askedTwice).toEqual([]);
    } finally {
      await teacher.close();
    }
  }, 300_000);
});

describe("the embedded runtime's environment", () => {
  it("puts back the environment it set for the code it runs in process when it stops", async () => {
    const names = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SFN", "STATE_MACHINE_ARN", "RECIPE_BUCKET"];
    const before = Object.fromEntries(names.map((n) => [n, process.env[n]]));
    process.env.AWS_ENDPOINT_URL = "http://127.0.0.1:1/kept";
    delete process.env.AWS_ENDPOINT_URL_SFN;
    try {
      const local = await startLocalRuntime({ dataDir: mkdtempSync(join(tmpdir(), "recipe-env-")) });
      expect(process.env.AWS_ENDPOINT_URL).toBe(local.s3.endpoint);
      expect(process.env.AWS_ENDPOINT_URL_SFN).toBe(local.sfn.endpoint);
      await local.stop();

      expect(process.env.AWS_ENDPOINT_URL).toBe("http://127.0.0.1:1/kept");
      expect(process.env).not.toHaveProperty("AWS_ENDPOINT_URL_SFN");
      expect(process.env.STATE_MACHINE_ARN).toBe(before.STATE_MACHINE_ARN);
    } finally {
      for (const [n, v] of Object.entries(before)) {
        if (v === undefined) delete process.env[n];
        else process.env[n] = v;
      }
    }
  }, 240_000);
});
