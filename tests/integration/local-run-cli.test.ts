/**
 * The embedded runtime end to end, as a user drives it: recipe run --fresh, traces and rated
 * sources, recipe rejects, runs that produce nothing, a run killed mid-distill, the environment.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { keys, type STAGES } from "../../core/layout/index.ts";
import { listAll, readJson } from "../../core/shards/byte-store.ts";
import type { StageSummary } from "../../core/stages/stage.ts";
import { executionArnFor, startLocalRuntime, uploadSources } from "../../local/runtime.ts";
import { lines, local, runSample, SAMPLE, stopRuntimeAfterEach, userFolder } from "../helpers/local-run.ts";

stopRuntimeAfterEach();

describe("recipe run --fresh", () => {
  it("forgets only its own run: another run's datasets and the generation cache stay", async () => {
    const { runCommand } = await import("../../cli/run.ts");
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

describe("a new teacher for a finished run", () => {
  it("recomputes distill and what follows, keeps ingest and dedup, and an unchanged rerun asks nothing", async () => {
    const { runCommand } = await import("../../cli/run.ts");
    const { startFakeOpenAI } = await import("../helpers/fake-openai.ts");
    const { startS3Emulator } = await import("../../local/s3-emulator.ts");
    const { LOCAL_BUCKET } = await import("../../local/runtime.ts");
    const { file, work } = userFolder("recipe-teacher-");
    const dataDir = join(work, "data");
    const teacher = await startFakeOpenAI({
      answer: () => "<think>Working it out carefully.</think><answer>42</answer>",
    });
    const run = async (opts: { teacherUrl?: string; teacherModel?: string }) => {
      let out = "";
      const code = await runCommand(
        file,
        { dataDir, parallelism: "2", ...opts },
        (t) => (out += t),
        (t) => (out += t),
      );
      return { code, out };
    };
    try {
      const replayed = await run({});
      expect(replayed.code, replayed.out).toBe(0);
      expect(teacher.requests).toHaveLength(0);

      const real = await run({ teacherUrl: teacher.url, teacherModel: "fake-teacher" });
      const asked = teacher.requests.length;
      const again = await run({ teacherUrl: teacher.url, teacherModel: "fake-teacher" });

      expect(asked).toBeGreaterThan(0);
      expect(real.out).toContain("run.json changed: a new revision of run sample");
      for (const kept of ["ingest-sft", "ingest-rl", "dedup-sft", "dedup-rl", "plan-distill"])
        expect(real.out).toContain(`${kept}: skipped (unchanged)`);
      expect(real.out).toMatch(/distill: recomputed \(teacher\.model changed\)/);
      expect(real.out).toMatch(/verify-traces: recomputed \(distill recomputed\)/);
      expect(again.code, again.out).toBe(0);
      expect(again.out).toContain("already succeeded with this run.json");
      expect(teacher.requests.length).toBe(asked);
      // The run's own files name the teacher that answered, and where.
      const s3 = await startS3Emulator(LOCAL_BUCKET, join(dataDir, "s3"));
      try {
        const card = (await s3.store.readBytes(keys.dataset("sample", "sft", "README.md")))!.toString();
        expect(card).toContain(`teacher fake-teacher via ${teacher.url}`);
        expect(card).not.toContain("Replay teacher");
        const report = (await readJson<{ teacher: string; generation: { asked: number } }>(
          s3.store,
          keys.report("sample", "report.json"),
        ))!;
        expect(report.teacher).toBe("fake-teacher");
        expect(report.generation.asked).toBeGreaterThan(0);
      } finally {
        await s3.stop();
      }
    } finally {
      await teacher.close();
    }
  }, 300_000);
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
      local.rt = await startLocalRuntime({
        dataDir: mkdtempSync(join(tmpdir(), "recipe-it-")),
        teacherUrl: teacher.url,
        teacherModel: "fake-teacher",
      });
      await uploadSources(
        local.rt!.s3,
        file,
        config.sources.sft.concat(config.sources.rl).map((s: { uri: string }) => s.uri),
      );
      await local.rt!.s3.store.write(keys.runConfig("traces"), JSON.stringify(config));
      const execution = await local.rt!.waitFor(executionArnFor("traces"));

      expect(execution.status).toBe("SUCCEEDED");
      expect(prompts.length).toBeGreaterThan(0); // the sample's questions were distilled
      for (const t of traces) expect(prompts.some((p) => p.includes(t.question))).toBe(false);
      const summary = async (stage: (typeof STAGES)[number]) =>
        (await readJson<StageSummary>(local.rt!.s3.store, keys.success("traces", stage)))!;
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
      local.rt = await startLocalRuntime({
        dataDir: mkdtempSync(join(tmpdir(), "recipe-it-")),
        teacherUrl: teacher.url,
        teacherModel: "fake-policy",
      });
      await uploadSources(local.rt!.s3, file, ["rated.jsonl"]);
      await local.rt!.s3.store.write(keys.runConfig("rated"), JSON.stringify(config));
      const execution = await local.rt!.waitFor(executionArnFor("rated"));

      expect(
        execution.status,
        JSON.stringify(await readJson(local.rt!.s3.store, keys.failure("rated"))),
      ).toBe("SUCCEEDED");
      expect(teacher.requests).toEqual([]);
      const write = (await readJson<StageSummary>(
        local.rt!.s3.store,
        keys.success("rated", "write-rl-dataset"),
      ))!;
      expect([write.in, write.out, write.reasons]).toEqual([12, 8, { never_solved: 2, always_solved: 2 }]);
      const { parquetReadObjects } = await import("hyparquet");
      const parts = (write as StageSummary & { files: { parquet: string[] } }).files.parquet;
      const bytes = (await local.rt!.s3.store.readBytes(parts[0]!))!;
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
    const { rejectsCommand } = await import("../../cli/rejects.ts");
    const dataDir = mkdtempSync(join(tmpdir(), "recipe-rejects-"));
    await runSample({ dataDir });
    // Each Batch job attempt's output is kept, as CloudWatch Logs keeps a container's.
    const distillLogs = readdirSync(join(dataDir, "logs")).filter((d) => d.startsWith("Distill-"));
    expect(distillLogs.length).toBeGreaterThan(0);
    expect(readdirSync(join(dataDir, "logs", distillLogs[0]!))).toContain("0.log");
    await local.rt!.stop();
    local.rt = null;
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
    // A dropped duplicate names the kept question, down to its source file and line.
    for (const r of dedup.rows) {
      expect(r.duplicateAt).toMatch(/^runs\/sample\/ingest-sft\/shards\/\d{5}\.jsonl\.gz:\d+$/);
      expect(r.duplicateOrigin).toMatch(/^sources\/sample\/sft-[a-z-]+\.jsonl:\d+$/);
      expect(r.duplicateOrigin).not.toBe(r.origin);
    }
    expect(mismatches.rows).toHaveLength(5);
    // A verify reject carries what a person needs to judge it: question, gold, the response's end.
    for (const r of mismatches.rows)
      expect(Object.keys(r.record.example).sort()).toEqual(["gold", "question", "responseEnd"]);
    expect(new Set(mismatches.rows.map((r) => `${r.stage} ${r.reason}`))).toEqual(
      new Set(["verify-traces answer_mismatch"]),
    );
  }, 240_000);
});

describe("a run that produces nothing useful", () => {
  it("fails with the reasons when the SFT set is empty, and says once that the replay teacher had no recordings", async () => {
    const { runCommand } = await import("../../cli/run.ts");
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
