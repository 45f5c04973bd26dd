/**
 * `recipe run <run.json>`: the sample (or any run) end to end on this machine, through the state
 * machine `cdk synth` emits; progress per stage; then where the datasets and report are, and a summary.
 * `recipe status <run-id>`: the same summary for a running or finished run, locally or in AWS.
 * `recipe submit <run.json> --bucket B`: uploads run.json to a deployed pipeline.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { SFNClient } from "@aws-sdk/client-sfn";
import cliProgress from "cli-progress";
import { type ConfigProblem, formatProblems, parseRunConfigText } from "../core/config/index.ts";
import { Rl, Teacher } from "../core/config/schema.ts";
import { configWarnings } from "../core/config/warnings.ts";
import { probeEndpoint } from "../core/generate/probe.ts";
import {
  attemptOf,
  CLOSED_UNSUCCESSFULLY,
  isAttemptOf,
  isRunId,
  keys,
  STAGES,
} from "../core/layout/index.ts";
import { evalRows, evalTableText, readEvalResults } from "../core/pipeline/report-eval.ts";
import { describeRevision, type Revision, revisionKey } from "../core/pipeline/revision.ts";
import { type ByteStore, listAll, readJson } from "../core/shards/byte-store.ts";
import { createS3Client, S3Store } from "../core/shards/s3-store.ts";
import { STAGE_UNITS, type StageSummary, stageSummaries } from "../core/stages/stage.ts";
import { UsageError } from "./errors.ts";
import type { LocalQuestion } from "./source-questions.ts";
import { sourceProblems } from "./sources.ts";

type Out = (text: string) => void;

export interface RunCommandOptions {
  teacherUrl?: string;
  teacherModel?: string;
  apiKeyEnv?: string;
  /** Without --teacher-url: the bundled replay teacher (default) or the synthetic one. */
  teacher?: "replay" | "synthetic";
  dataDir: string;
  parallelism: string;
  fresh?: boolean;
}

/**
 * The run.json that is uploaded: the user's file with what `recipe run` changes written into it, so
 * that the run's config (and every stage fingerprint, data card and report) names the teacher that
 * really answers. `--teacher-url` makes the teacher an endpoint; `--teacher-model` names the model
 * it serves (for the teacher and, since one local endpoint answers both, the policy's rollouts).
 * With neither, the bundled replay server answers: its models are named `replay/<model>`, so its
 * recorded placeholder answers never share a generation-cache key with a real model's.
 */
export function effectiveRunConfig(
  text: string,
  opts: Pick<RunCommandOptions, "teacherUrl" | "teacherModel" | "teacher">,
): string {
  const config = JSON.parse(text) as Record<string, Record<string, unknown> | undefined>;
  const teacher = { ...(config.teacher ?? {}) };
  const rl = { ...(config.rl ?? {}) };
  if (opts.teacherUrl) {
    teacher.serving = "endpoint";
    teacher.endpoint = { url: opts.teacherUrl };
    if (opts.teacherModel) {
      teacher.model = opts.teacherModel;
      rl.policyModel = opts.teacherModel;
    }
  } else {
    // The synthetic teacher's answers are its own too: synthetic/<model>.
    const prefix = opts.teacher === "synthetic" ? "synthetic/" : "replay/";
    const replay = (m: unknown, fallback: string) => {
      const id = (typeof m === "string" ? m : fallback).replace(/^(replay|synthetic)\//, "");
      return `${prefix}${id}`;
    };
    teacher.model = replay(teacher.model, Teacher.parse({}).model);
    rl.policyModel = replay(rl.policyModel, Rl.parse({}).policyModel);
  }
  return `${JSON.stringify({ ...config, teacher, rl }, null, 2)}\n`;
}

export function summaryTable(rows: StageSummary[]): string {
  const header = ["stage", "in", "out", "rejected", "unit", "reject reasons"];
  const body = rows.map((s) => [
    s.stage,
    String(s.in),
    String(s.out),
    String(s.rejected),
    STAGE_UNITS[s.stage] ?? "",
    Object.entries(s.reasons)
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([r, n]) => `${r} ${n}`)
      .join(", "),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 1 && i <= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

/** Where the per-record rejects are, when there are any. */
function rejectsHint(runId: string, rows: StageSummary[], where: string): string {
  if (!rows.some((r) => r.rejected > 0)) return "";
  return `each reject, with its source file and line: npx recipe rejects ${runId}${where} [--stage S] [--reason R]\n`;
}

/** Copies the run's datasets and report out of the emulator into plain files. */
async function exportOutputs(store: ByteStore, runId: string, to: string): Promise<string[]> {
  const written: string[] = [];
  for (const prefix of [
    `${keys.runConfig(runId).replace("run.json", "")}datasets/`,
    `${keys.runConfig(runId).replace("run.json", "")}report/`,
  ]) {
    for (const key of await listAll(store, prefix)) {
      const file = join(to, key.slice(`runs/${runId}/`.length));
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, (await store.readBytes(key))!);
      written.push(file);
    }
  }
  return written;
}

export async function runCommand(file: string, opts: RunCommandOptions, out: Out, err: Out): Promise<number> {
  const text = readFileSync(file, "utf8");
  const parsed = parseRunConfigText(text);
  let problems = parsed.ok ? sourceProblems(parsed.config, file) : parsed.problems;
  if (parsed.ok && problems.length === 0)
    problems = await (await import("./source-images.ts")).sourceImageProblems(parsed.config, file);
  if (!parsed.ok || problems.length > 0) {
    err(`${file}: INVALID, ${problems.length} problem(s)\n${formatProblems(problems)}\n`);
    return 2;
  }
  // What `recipe validate` warns about, before anything starts.
  for (const w of configWarnings(parsed.config)) err(`warning: ${w}\n`);
  for (const w of await (await import("./source-columns.ts")).sourceColumnWarnings(parsed.config, file))
    err(`warning: ${w}\n`);
  const effective = effectiveRunConfig(text, opts);
  const config = parsed.config;
  if (opts.teacherUrl) {
    // Before anything starts: an unreachable endpoint, a refused key or an unknown model fails now.
    out(`checking the teacher at ${opts.teacherUrl} ...\n`);
    const probe = await probeEndpoint({
      baseURL: opts.teacherUrl,
      apiKey: opts.apiKeyEnv ? process.env[opts.apiKeyEnv] : undefined,
      model: opts.teacherModel ?? config.teacher.model,
      timeoutMs: 8_000,
    });
    if (!probe.ok) {
      err(`run ${config.runId} not started: ${probe.message}\n`);
      return 1;
    }
  }
  if (opts.teacher === "synthetic" && opts.teacherUrl)
    throw new UsageError("--teacher synthetic and --teacher-url name two teachers: give one");
  // Without an endpoint, a bundled teacher answers: say before anything runs what it can answer.
  let syntheticQuestions: LocalQuestion[] | undefined;
  if (!opts.teacherUrl) {
    const { localQuestions } = await import("./source-questions.ts");
    const { questions } = await localQuestions(config, file);
    if (opts.teacher === "synthetic") {
      syntheticQuestions = questions;
      out(
        `  teacher: the synthetic teacher answers your ${questions.length} question(s) from their gold answers (a seeded mix of right, wrong, unformatted, looping and truncated answers); the datasets are not for training\n`,
      );
    } else {
      const { findRecording, loadRecordings } = await import("../local/replay-server.ts");
      const { questionWithOptions } = await import("../core/records/index.ts");
      const recordings = loadRecordings();
      const missing = questions.filter((q) => !findRecording(recordings, questionWithOptions(q))).length;
      if (missing > 0)
        err(
          `NOTE: the replay teacher has no recording for ${missing} of ${questions.length} question(s) in your sources (it knows only the sample's, examples/sample/replay.jsonl): their answers would be placeholders and rejected. To try the whole funnel on your own data: --teacher synthetic; for real answers: --teacher-url URL --teacher-model ID\n`,
        );
    }
  }
  // Something on the screen from the first second: loading and synthesizing the stack take a while.
  out(`recipe-pipeline: run ${config.runId} on the embedded runtime\n`);
  out("  starting: synthesizing the stack (cdk synth), the S3 emulator, the local Step Functions API ...\n");
  const startedRuntime = Date.now();
  const { startLocalRuntime, uploadSources, clearRun } = await import("../local/runtime.ts");
  const dataDir = resolve(opts.dataDir);
  const logs: string[] = [];
  let stopOnInterrupt = async () => false;
  const rt = await startLocalRuntime({
    dataDir,
    teacherUrl: opts.teacherUrl,
    teacherModel: opts.teacherModel,
    apiKeyEnv: opts.apiKeyEnv,
    teacher: opts.teacher,
    syntheticQuestions,
    batchParallelism: Number(opts.parallelism),
    log: (l) => logs.push(l),
  });
  try {
    const teacher = rt.replay
      ? opts.teacher === "synthetic"
        ? `synthetic teacher (answers made from the gold answers) at ${rt.replay.url}`
        : `replay teacher (recorded sample responses) at ${rt.replay.url}`
      : `${opts.teacherUrl}`;
    out(
      `  ready in ${((Date.now() - startedRuntime) / 1000).toFixed(1)} s: S3 emulator ${rt.s3.endpoint}, data in ${dataDir}\n  teacher: ${teacher}\n`,
    );
    if (rt.replay)
      out(
        opts.teacher === "synthetic"
          ? "  NOTE: the synthetic teacher makes its answers from the gold answers; the datasets exercise the pipeline and are not for training.\n"
          : "  NOTE: the replay teacher answers from recordings; the datasets exercise the pipeline and are not for training.\n",
      );
    if (opts.fresh) {
      const removed = await clearRun(rt, dataDir, config.runId);
      out(
        `  --fresh: removed run ${config.runId} (${removed} objects); other runs and the generation cache are kept\n`,
      );
    }
    // The files each source names, never the folder around them: the data directory is often in it.
    await uploadSources(
      rt.s3,
      file,
      [
        ...config.sources.sft,
        ...config.sources.rl,
        ...config.dedup.decontamination.benchmarks.map((b) => ({ ...b, tablesOnly: true })),
      ],
      [dataDir],
    );
    const started = Date.now();
    // The upload is the trigger, as in AWS: start-run decides (start, start again after a failure, or
    // nothing), and names the execution to follow.
    const key = keys.runConfig(config.runId);
    const before = rt.triggers.length;
    await rt.s3.store.write(key, effective);
    let trigger: (typeof rt.triggers)[number] | undefined;
    for (let waited = 0; !trigger; waited += 100) {
      trigger = rt.triggers.slice(before).find((t) => t.key === key);
      if (trigger) break;
      if (waited > 0 && waited % 5000 === 0)
        out(`  waiting for start-run to handle the upload of ${key} ...\n`);
      await new Promise((r) => setTimeout(r, 100));
    }
    if (trigger.outcome === "conflict") {
      err(
        `run ${config.runId} is still running with an earlier run.json (${trigger.executionArn ?? ""}): nothing was started. Let it finish or stop its recipe process, then run this again: the change starts a new revision that keeps the stages it does not touch\n`,
      );
      return 1;
    }
    if (trigger.outcome === "error" || !trigger.executionArn) {
      err(`run ${config.runId} was not started: ${trigger.error ?? trigger.outcome}\n`);
      return 1;
    }
    const arn = trigger.executionArn;
    const recorded = rt.sfn.executions.get(arn);
    if (recorded?.status === "RUNNING" && recorded.owner !== process.pid) {
      err(
        `run ${config.runId} is running in another recipe process (pid ${recorded.owner}): follow it with npx recipe status ${config.runId}, or stop that process and run this again\n`,
      );
      return 1;
    }
    if (trigger.outcome === "restarted")
      out(
        `  starting run ${config.runId} again (its last execution did not finish); finished stages are kept\n`,
      );
    const executionName = arn.slice(arn.lastIndexOf(":") + 1);
    if (trigger.outcome === "revised")
      out(
        `  run.json changed: a new revision of run ${config.runId} (${executionName}); stages whose inputs changed are recomputed, the others kept\n`,
      );
    if (trigger.outcome === "data_changed")
      out(
        `  a source file changed since the last run: a new revision of run ${config.runId} (${executionName}); the stages that read it are recomputed, the others kept\n`,
      );
    if (trigger.outcome === "already_started" && recorded?.status === "SUCCEEDED")
      out(`  run ${config.runId} already succeeded with this run.json: nothing to compute\n`);
    const expected = STAGES.length;
    const bar = process.stdout.isTTY
      ? new cliProgress.SingleBar(
          { format: "  {bar} {value}/{total} stages  {stage}", hideCursor: true, clearOnComplete: true },
          cliProgress.Presets.shades_classic,
        )
      : null;
    const seen = new Set<string>();
    // Ctrl-C: stop cleanly (the terminal's cursor back, one line on what is kept); a second one exits
    // at once. Listening starts before the bar hides the cursor: a press just after the bar showed
    // found no listener and killed the process with the cursor hidden and nothing said.
    let interrupted = false;
    const onInterrupt = () => {
      if (interrupted) {
        process.stderr.write("\x1b[?25h\n");
        process.exit(130);
      }
      interrupted = true;
      bar?.stop();
      err(
        `\ninterrupted: run ${config.runId} stopped; its ${seen.size} finished stage(s), finished shards and cached teacher answers are kept in ${dataDir}. Run the same command to resume (Ctrl-C again exits at once)\n`,
      );
    };
    process.on("SIGINT", onInterrupt);
    bar?.start(expected, 0, { stage: "starting" });
    let revisionShown = trigger.outcome === "already_started";
    let done = false;
    const execution = rt.waitFor(arn).then((e) => {
      done = true;
      return e;
    });
    let aborted = false;
    stopOnInterrupt = async () => {
      process.off("SIGINT", onInterrupt);
      if (!interrupted) return false;
      if (aborted) return true;
      aborted = true;
      // The execution ends as Step Functions' StopExecution would leave it: the next run starts it again.
      rt.sfn.finish(arn, { status: "ABORTED", error: "Interrupted", cause: "Ctrl-C in recipe run" });
      return true;
    };
    while (!done && !interrupted) {
      await new Promise((r) => setTimeout(r, 300));
      if (!revisionShown) {
        // What the execution's first step decided: which stages are kept, which are recomputed and why.
        const revision = await readJson<Revision>(rt.s3.store, revisionKey(config.runId)).catch(() => null);
        if (revision && revision.attempt === attemptOf(config.runId, executionName)) {
          revisionShown = true;
          // Kept stages are reported here, once; the progress below is what this execution computes.
          for (const d of revision.stages) if (d.action === "keep") seen.add(d.stage);
          const lines = describeRevision(revision);
          if (lines.length > 0) {
            bar?.stop();
            out(`${lines.map((l) => `  ${l}\n`).join("")}`);
            bar?.start(expected, seen.size, { stage: "running" });
          }
        }
      }
      if (!revisionShown) continue;
      // The poll reads while stages write: the emulator (unlike S3) can serve a half-written object,
      // which only means this poll shows nothing new.
      for (const s of await stageSummaries(rt.s3.store, config.runId).catch(() => [])) {
        if (seen.has(s.stage)) continue;
        seen.add(s.stage);
        if (bar) bar.update(seen.size, { stage: s.stage });
        else out(`  done  ${s.stage.padEnd(20)} in ${s.in}, out ${s.out}, rejected ${s.rejected}\n`);
      }
    }
    if (await stopOnInterrupt()) return 130;
    const result = await execution;
    bar?.stop();
    if (rt.replay && opts.teacher !== "synthetic" && rt.replay.misses > 0) {
      // Said once, with counts: an empty or tiny SFT set from a replay run is this, not a pipeline bug.
      err(
        `NOTE: the replay teacher had no recording for ${rt.replay.misses} of ${rt.replay.requests} requests (it only knows the sample's questions, examples/sample/replay.jsonl); those answers are placeholders and are rejected. Use a real teacher: --teacher-url URL --teacher-model ID\n`,
      );
    }
    const rows = await stageSummaries(rt.s3.store, config.runId);
    out(`\n${summaryTable(rows)}\n${rejectsHint(config.runId, rows, "")}\n`);
    if (result.status !== "SUCCEEDED") {
      // The cause of the attempt that just ran, never one an earlier attempt left.
      const found = await readJson<Record<string, unknown>>(rt.s3.store, keys.failure(config.runId));
      const attempt = attemptOf(config.runId, executionName);
      const failure = found && failureOfAttempt(found, attempt, result.status) ? found : null;
      err(
        failure
          ? `run ${config.runId} ${result.status} ${describeFailure(failure)}`
          : `run ${config.runId} ${result.status} (attempt ${attempt}): ${result.error ?? ""}\n  ${result.cause ?? ""}\n`,
      );
      return 1;
    }
    const exportDir = join(dataDir, "runs", config.runId);
    const files = await exportOutputs(rt.s3.store, config.runId, exportDir);
    out(`run ${config.runId} SUCCEEDED in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    out(
      [
        config.sources.sft.length > 0 ? `  SFT dataset: ${join(exportDir, "datasets", "sft")}\n` : "",
        config.rl.enabled && config.sources.rl.length > 0
          ? `  RL dataset:  ${join(exportDir, "datasets", "rl")}\n`
          : "",
        `  report:      ${join(exportDir, "report", "report.html")}\n`,
        // The Batch jobs' output (CloudWatch Logs in AWS): the training and evaluation jobs' dry runs
        // print there what they checked and the exact commands a GPU host runs.
        `  job logs:    ${join(dataDir, "logs")}${config.training.sft.enabled || config.training.rl.enabled || config.evaluation.enabled ? " (no GPU here: training and evaluation ran as dry runs, each log has what it checked and the exact command; RECIPE_SFT_PYTHON / RECIPE_EVAL_PYTHON run them on CPU)" : ""}\n`,
      ].join(""),
    );
    out(
      `  (${files.length} files; the same objects are in the emulator under s3://recipe-local/runs/${config.runId}/)\n`,
    );
    return 0;
  } finally {
    const wasInterrupted = await stopOnInterrupt();
    await rt.stop();
    // The in-process state machine of the stopped execution has nothing left to finish for.
    if (wasInterrupted) process.exit(130);
  }
}

/**
 * Whether a failure.json belongs to the attempt at hand: its own attempt number says so; one written
 * before failures named their attempt counts only while the execution shown ended unsuccessfully.
 */
export function failureOfAttempt(
  failure: Record<string, unknown>,
  attempt: number | null,
  status: string | undefined,
): boolean {
  if (typeof failure.attempt === "number" && attempt !== null) return failure.attempt === attempt;
  return status === undefined || CLOSED_UNSUCCESSFULLY.has(status);
}

/** A failure.json as a person reads it: where, what, the cause in its own words, what to do. */
export function describeFailure(f: Record<string, unknown>): string {
  const cause = f.cause as { errorMessage?: string } | string | undefined;
  const text =
    typeof cause === "string"
      ? cause
      : (cause?.errorMessage ?? (cause === undefined ? "" : JSON.stringify(cause, null, 2)));
  const problems = Array.isArray(f.problems) ? formatProblems(f.problems as ConfigProblem[]) : "";
  return [
    `${typeof f.attempt === "number" ? `(attempt ${f.attempt}) ` : ""}at ${String(f.state ?? "?")}: ${String(f.error ?? "")}\n`,
    text ? `  ${text}\n` : "",
    problems ? `${problems}\n` : "",
    f.whatToDo ? `  what to do: ${String(f.whatToDo)}\n` : "",
  ].join("");
}

/** The store a run lives in: the deployed bucket (--bucket), or the local runtime's emulator. */
export async function openRunStore(opts: {
  bucket?: string;
  dataDir: string;
}): Promise<{ store: ByteStore; stop: () => Promise<unknown>; local: boolean }> {
  if (opts.bucket)
    return { store: new S3Store(createS3Client(), opts.bucket), stop: async () => undefined, local: false };
  const { startS3Emulator } = await import("../local/s3-emulator.ts");
  const { LOCAL_BUCKET } = await import("../local/runtime.ts");
  const s3 = await startS3Emulator(LOCAL_BUCKET, join(resolve(opts.dataDir), "s3"));
  return { store: s3.store, stop: () => s3.stop(), local: true };
}

/** Throws a usage error unless `runId` is a valid run id. */
export function checkRunId(runId: string): void {
  if (!isRunId(runId)) {
    throw new UsageError(
      `not a run id: ${JSON.stringify(runId)} (letters, digits, '_' and '-', starting with a letter or digit, at most 80)`,
    );
  }
}

export interface StatusOptions {
  bucket?: string;
  stateMachineArn?: string;
  dataDir: string;
}

/** Status of a run: DescribeExecution plus the stage stats from S3, in AWS (with --bucket) or locally. */
export async function statusCommand(runId: string, opts: StatusOptions, out: Out, err: Out): Promise<number> {
  checkRunId(runId);
  if (opts.stateMachineArn && !opts.bucket)
    throw new UsageError("--state-machine-arn needs --bucket as well");
  const { store, stop, local } = await openRunStore(opts);
  let execution: {
    status?: string;
    startDate?: Date | number;
    stopDate?: Date | number;
    error?: string;
  } | null = null;
  let attempt: number | null = null;
  if (opts.bucket && opts.stateMachineArn) {
    const { latestExecution } = await import("../lambdas/start-run/handler.ts");
    const sfn = new SFNClient({});
    const latest = await latestExecution(sfn, opts.stateMachineArn, runId);
    execution = latest?.execution ?? null;
    attempt = latest?.attempt ?? null;
  } else if (local) {
    try {
      // A RUNNING execution whose recipe process is gone (killed) reads as ABORTED, as `recipe run` sees it.
      const { loadExecutions } = await import("../local/sfn-api.ts");
      const all = [...loadExecutions(join(resolve(opts.dataDir), "executions.json")).values()];
      // The newest attempt of the run (a failed run started again is `<run-id>.2`, ...).
      const attempts = all.filter((e) => isAttemptOf(e.name, runId));
      const latest = attempts.sort((a, b) => b.startDate - a.startDate)[0] ?? null;
      execution = latest;
      attempt = latest ? attemptOf(runId, latest.name) : null;
    } catch {
      execution = null;
    }
  }
  try {
    const rows = await stageSummaries(store, runId);
    if (!execution && rows.length === 0) {
      err(`no run ${runId} found${opts.bucket ? ` in s3://${opts.bucket}` : ` in ${opts.dataDir}`}\n`);
      return 1;
    }
    out(
      `run ${runId}: ${execution?.status ?? "unknown execution state"}${execution?.error ? ` (${execution.error})` : ""}\n\n${summaryTable(rows)}\n${rejectsHint(runId, rows, opts.bucket ? ` --bucket ${opts.bucket}` : "")}`,
    );
    // The models' benchmark scores, once evaluate has written any.
    const evaluated = evalRows(await readEvalResults(store, runId));
    if (evaluated.length > 0) out(`\nbenchmarks (evaluate):\n${evalTableText(evaluated)}`);
    // failure.json speaks of one attempt: shown only when it is the attempt shown above (a run that
    // failed and then succeeded is not failed).
    const found = await readJson<Record<string, unknown>>(store, keys.failure(runId));
    const failure = found && failureOfAttempt(found, attempt, execution?.status) ? found : null;
    if (failure)
      out(
        `\nfailure.json${typeof failure.attempt === "number" ? ` (attempt ${failure.attempt})` : ""}:\n${JSON.stringify(failure, null, 2)}\n`,
      );
    // A script waiting on a run can tell a failed one from a finished one by the exit code.
    return failure || CLOSED_UNSUCCESSFULLY.has(execution?.status ?? "") ? 1 : 0;
  } finally {
    await stop();
  }
}

export async function submitCommand(
  file: string,
  opts: { bucket: string },
  out: Out,
  err: Out,
): Promise<number> {
  const text = readFileSync(file, "utf8");
  const parsed = parseRunConfigText(text);
  if (!parsed.ok) {
    err(`${file}: INVALID, ${parsed.problems.length} problem(s)\n${formatProblems(parsed.problems)}\n`);
    return 2;
  }
  const store = new S3Store(createS3Client(), opts.bucket);
  const key = keys.runConfig(parsed.config.runId);
  if (await store.exists(key)) {
    err(`s3://${opts.bucket}/${key} exists: runs are immutable, choose a new runId\n`);
    return 1;
  }
  await store.write(key, text, { contentType: "application/json" });
  out(
    `uploaded s3://${opts.bucket}/${key}: the run starts now; follow it with npx recipe status ${parsed.config.runId} --bucket ${opts.bucket}\n`,
  );
  return 0;
}
