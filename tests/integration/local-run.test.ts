/**
 * The embedded runtime end to end: the synthesized state machine, an S3 emulator over HTTP, the Lambda
 * functions in their own workers, Batch jobs as child processes, IAM enforced, the replay teacher.
 * The sample run, faults, and IAM (the CLI-level runs are in local-run-cli.test.ts, a second file so
 * the two run in parallel).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TransientError } from "../../core/errors.ts";
import { keys, STAGES } from "../../core/layout/index.ts";
import { type Revision, revisionKey } from "../../core/pipeline/revision.ts";
import { listAll, readJson } from "../../core/shards/byte-store.ts";
import type { ShardStats, StageSummary } from "../../core/stages/stage.ts";
import { executionArnFor, type LocalOptions } from "../../local/runtime.ts";
import { lines, local, runSample, SAMPLE, stopRuntimeAfterEach } from "../helpers/local-run.ts";

stopRuntimeAfterEach();

describe("the sample run on the embedded runtime", () => {
  it("writes datasets, rejects with reasons, stats, report and data cards, and its counts add up", async () => {
    const { execution } = await runSample();

    expect(execution.status, execution.cause).toBe("SUCCEEDED");
    // Every call each function, job and the state machine made was allowed by the template's IAM.
    expect(local.rt!.account.denials).toEqual([]);
    const store = local.rt!.s3.store;
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
    // What a person needs to judge the data: examples of rejects per reason, kept traces with their
    // images inline, the length distribution; still one static file (no scripts, nothing fetched).
    expect(report).toContain("<summary>verify-traces: answer_mismatch (3 examples)</summary>");
    expect(report).toMatch(/<b>extracted<\/b> <code>[^<]*<\/code> <b>gold<\/b>/);
    expect(report).toMatch(/<h2 id="kept">Kept examples<\/h2>[\s\S]*<img src="data:image\/png;base64,/);
    expect(report).toContain("SFT response length, characters (histogram)");
    expect(report).not.toMatch(/<script|src="http/);
    expect(card).toContain("teacher replay/sample-teacher via the bundled replay server");
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

  it("starts a changed run.json as a new revision that recomputes only what the change touches", async () => {
    const { rt } = await runSample();
    const store = rt.s3.store;
    const ingestStats = keys.success("sample", "ingest-sft");
    const ingestBefore = (await store.readBytes(ingestStats))!;
    const mixBefore = (await store.readBytes(keys.success("sample", "select-and-mix")))!;
    const teacherCalls = rt.replay!.requests;
    const changed = JSON.parse(readFileSync(SAMPLE, "utf8"));
    changed.mixing.seed = 8;

    await store.write(keys.runConfig("sample"), JSON.stringify(changed));
    for (let waited = 0; rt.triggers.length < 2 && waited < 10_000; waited += 100)
      await new Promise((r) => setTimeout(r, 100));
    const revised = await rt.waitFor(executionArnFor("sample").replace(/:sample$/, ":sample.2"));

    expect(rt.triggers.map((t) => t.outcome)).toEqual(["started", "revised"]);
    expect(revised.status, revised.cause).toBe("SUCCEEDED");
    const revision = (await readJson<Revision>(store, revisionKey("sample")))!;
    expect(revision.attempt).toBe(2);
    const action = (stage: string) => revision.stages.find((d) => d.stage === stage);
    expect(action("ingest-sft")).toEqual({ stage: "ingest-sft", action: "keep" });
    expect(action("distill")).toEqual({ stage: "distill", action: "keep" });
    expect(action("select-and-mix")).toEqual({
      stage: "select-and-mix",
      action: "recompute",
      because: ["mixing.seed changed"],
    });
    // Kept means untouched: the same object, not a recomputed copy; no teacher request was made.
    expect((await store.readBytes(ingestStats))!.equals(ingestBefore)).toBe(true);
    expect(rt.replay!.requests).toBe(teacherCalls);
    const config = (await readJson<{ mixing: { seed: number } }>(store, keys.resolvedConfig("sample")))!;
    expect(config.mixing.seed).toBe(8);
    expect((await store.readBytes(keys.success("sample", "select-and-mix")))!.equals(mixBefore)).toBe(false);
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

describe("training on several nodes", () => {
  it("runs train-rl as a multi-node parallel job: the main node starts a head, the other joins, verl is told both", async () => {
    const config = JSON.parse(readFileSync(SAMPLE, "utf8"));
    // The sample's RL set is a few prompts: batches of 2 give verl steps to take.
    config.training = { rl: { enabled: true, nodes: 2, trainBatchSize: 2, ppoMiniBatchSize: 2 } };
    const out = new Map<string, string>();
    const { execution } = await runSample(
      {
        onBatchChild: (child, index, _attempt, jobName) => {
          if (!jobName.startsWith("TrainRl")) return;
          child.stdout?.on("data", (d) =>
            out.set(`${jobName}[${index}]`, (out.get(`${jobName}[${index}]`) ?? "") + d),
          );
        },
      },
      JSON.stringify(config),
    );

    expect(execution.status, execution.cause).toBe("SUCCEEDED");
    expect([...out.keys()].sort()).toEqual(["TrainRlMultiNode-sample[0]", "TrainRlMultiNode-sample[1]"]);
    const main = out.get("TrainRlMultiNode-sample[0]")!;
    expect(main).toContain("ray start --head");
    expect(main).toContain("cluster: 2 nodes joined");
    expect(main).toContain("trainer.nnodes=2");
    expect(out.get("TrainRlMultiNode-sample[1]")).toContain("ray start --address=127.0.0.1:6379");
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

  it("terminates the Batch jobs of an execution that fails, so no child asks the teacher after its run is over", async () => {
    // Found by npm run chaos: a failure in the RL branch ended the execution while distill's children
    // ran on, asking the teacher for answers that no run would ever cache.
    const children: import("node:child_process").ChildProcess[] = [];
    const { execution } = await runSample({
      teacherHold: { model: "replay/sample-teacher", count: 20 },
      batchParallelism: 1,
      stopGraceMs: 2_000,
      onBatchChild: (child, _index, _attempt, jobName) => {
        if (jobName.startsWith("Distill")) children.push(child);
      },
      beforeStep: async (step) => {
        if (step !== "write-rl-dataset") return;
        // Distill is provably mid-shard: its child waits for held answers.
        for (let waited = 0; local.rt?.replay?.held === 0; waited += 50) {
          if (waited > 120_000) throw new Error("distill never reached the hold");
          await new Promise((r) => setTimeout(r, 50));
        }
        throw Object.assign(new Error("injected"), { name: "InputContractError" });
      },
    });

    expect(execution.status).toBe("FAILED");
    expect(children.length).toBeGreaterThan(0);
    expect(children.filter((c) => c.exitCode === null && c.signalCode === null)).toEqual([]);
  });

  it("starts no Batch container once the runtime has stopped its jobs, even when none was running", async () => {
    // Found by npm run chaos: a stop with no child running at that moment was not remembered, and the
    // next array child (or job) started after the process had closed; its answers were never cached.
    let distillChildren = 0;
    const { execution } = await runSample({
      onBatchChild: (_child, _index, _attempt, jobName) => {
        if (jobName.startsWith("Distill")) distillChildren += 1;
      },
      beforeStep: async (step, event) => {
        if (step === "plan-generation" && JSON.stringify(event).includes("plan-distill"))
          await local.rt!.runner.terminateJobs();
      },
    });

    expect(execution.status).toBe("FAILED");
    expect(distillChildren).toBe(0);
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
          if (local.rt!.replay!.held === 0 || child.exitCode !== null) return;
          clearInterval(timer);
          // Give the answered requests a moment to reach the cache, then kill and let the rest through.
          setTimeout(() => {
            killedMidRun = child.exitCode === null;
            child.kill("SIGKILL");
            local.rt!.replay!.release();
          }, 300);
        }, 10);
      },
    });

    expect(killedMidRun).toBe(true);
    const failure = await readJson(local.rt!.s3.store, keys.failure("sample"));
    expect(execution.status, JSON.stringify(failure)).toBe("SUCCEEDED");
    const traces = await lines(keys.shard("sample", "distill", 0));
    expect(new Set(traces.map((t) => `${t.questionId}:${t.sampleIndex}`)).size).toBe(traces.length);
    const stats = (await readJson<StageSummary>(local.rt!.s3.store, keys.success("sample", "distill")))!;
    expect(stats.out).toBe(stats.in);
    expect(stats.extra.resumed).toBeGreaterThan(0);
  });

  it("a shard left without a result (a tolerated Map failure) fails the stage, and starting the run again computes only that shard", async () => {
    let dropped = false;
    const { execution } = await runSample({
      // What a Map child that failed within toleratedFailurePercentage leaves: no stats for its shard.
      beforeStep: async (step, event) => {
        if (step !== "finish-stage" || dropped || (event as { stage: string }).stage !== "ingest-sft") return;
        dropped = true;
        await local.rt!.s3.store.delete(keys.stats("sample", "ingest-sft", 1));
      },
    });

    expect(execution.status).toBe("FAILED");
    const failure = JSON.stringify(await readJson(local.rt!.s3.store, keys.failure("sample")));
    expect(failure).toContain("StageIncomplete");
    expect(failure).toContain("ingest-sft: 1 of");
    expect(failure).toContain("(shards 1)");
    expect(
      await readJson(local.rt!.s3.store, `${keys.stagePrefix("sample", "ingest-sft")}missing.json`),
    ).toMatchObject({
      missing: [1],
    });
    expect(await local.rt!.s3.store.exists(keys.success("sample", "ingest-sft"))).toBe(false);
    const shard0 = await local.rt!.s3.store.readBytes(keys.stats("sample", "ingest-sft", 0));

    // Start it again (the same run.json): attempt 2 computes shard 1 and leaves shard 0 as it was.
    await local.rt!.s3.store.write(keys.runConfig("sample"), readFileSync(SAMPLE, "utf8"));
    const again = await local.rt!.waitFor(executionArnFor("sample.2"));

    expect(again.status, again.cause).toBe("SUCCEEDED");
    expect(await local.rt!.s3.store.exists(keys.stats("sample", "ingest-sft", 1))).toBe(true);
    expect((await local.rt!.s3.store.readBytes(keys.stats("sample", "ingest-sft", 0)))!.equals(shard0!)).toBe(
      true,
    );
    expect(
      await readJson(local.rt!.s3.store, `${keys.stagePrefix("sample", "ingest-sft")}missing.json`),
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
    const failure = JSON.stringify(await readJson(local.rt!.s3.store, keys.failure("sample")));
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
      local.rt!.s3.store,
      keys.failure("broken"),
    );
    expect(failure?.state).toBe("ValidateConfig");
    expect(failure?.problems.map((p) => p.path).sort()).toEqual([
      "$.mixng",
      "$.sources.sft[0].format",
      "$.teacher.temperature",
    ]);
    expect(await local.rt!.s3.store.exists(keys.success("broken", "ingest-sft"))).toBe(false);
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
    const denial = local.rt!.account.denials[0]!;
    expect(denial.principal).toMatch(/:role\/RecipePipeline-StepwritesftdatasetFnServiceRole/);
    expect(denial.action).toBe("s3:PutObject");
    // The first write of the SFT set: a part (a Map child) or the dataset folder itself.
    expect(denial.resource).toMatch(
      /^arn:aws:s3:::recipe-local\/runs\/sample\/(datasets\/sft|write-sft-dataset\/work)\//,
    );
    // What the user sees in failure.json: the failed state and AWS's own message.
    const failure = JSON.stringify(await readJson(local.rt!.s3.store, keys.failure("sample")));
    expect(failure).toContain("WriteSftParts");
    expect(failure).toContain("AccessDenied");
    expect(failure).toContain("StepwritesftdatasetFnServiceRole");
    expect(failure).toContain("is not authorized to perform: s3:PutObject");
    // Nothing that needed the grant was written; the stages before it were.
    expect(await local.rt!.s3.store.exists(keys.success("sample", "distill"))).toBe(true);
    expect(await listAll(local.rt!.s3.store, "runs/sample/datasets/sft/")).toEqual([]);
  });

  it("without its Batch policy the state machine cannot submit the GPU jobs (the first-deploy defect)", async () => {
    const { execution } = await runSample({
      editTemplate: (t) => {
        for (const [id, r] of Object.entries(t.Resources))
          if (r.Type.startsWith("AWS::IAM::") && id.startsWith("PipelineBatchJobsPolicy"))
            delete t.Resources[id];
      },
    });

    expect(execution.status).toBe("FAILED");
    const denial = local.rt!.account.denials[0]!;
    expect(denial.principal).toMatch(/:role\/RecipePipeline-PipelineStateMachineRole/);
    expect(denial.action).toBe("batch:SubmitJob");
    // The replay teacher's size is unknown: its jobs go to the large queue.
    expect(denial.resource).toBe("arn:aws:batch:us-east-1:000000000000:job-queue/RecipePipeline-gpu-large");
    expect(await local.rt!.s3.store.exists(keys.success("sample", "distill"))).toBe(false);
  });
});
