/**
 * The evaluate launcher: for each model of the run (base, SFT, RL: core/eval/run.ts) it stages the
 * weights, starts vLLM's OpenAI server on the instance's GPUs, and runs lmms-eval's OpenAI-compatible
 * model type against it over this project's task definitions (core/eval/tasks.ts), every answer
 * scored by the project's verifier with the deployed judge (verify.mjs). Each (model, task) writes
 * `runs/<id>/eval/<model>/<task>.json` (an EvalResult) and its logged samples; a restarted job skips
 * what is written. Then `_SUCCESS` of evaluate.
 *
 * Exit codes: 0 done, 3 bad input (unknown task, a named model the run has not exported), 75
 * transient (vLLM or lmms-eval failed: Batch retries, finished benchmarks are kept).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import type { RunConfig } from "../../../core/config/schema.ts";
import { EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT, InputContractError } from "../../../core/errors.ts";
import { aggregateVerdicts, type EvalResult, type SampleVerdict } from "../../../core/eval/result.ts";
import {
  type EvalTarget,
  evalBenchmarks,
  evalTargets,
  lmmsEvalCommand,
  maxImagesPerPrompt,
  vllmServeArgs,
} from "../../../core/eval/run.ts";
import { type EvalBenchmark, renderTaskYaml, taskModule } from "../../../core/eval/tasks.ts";
import { modelFacts, PROMPT_TOKENS, planServe } from "../../../core/generate/serve-plan.ts";
import { keys, TRAINED_MODELS, type TrainedModel } from "../../../core/layout/index.ts";
import { unloadable } from "../../../core/models/architectures.ts";
import { s3Folder, stageModelFolder } from "../../../core/models/stage.ts";
import { loadConfig } from "../../../core/pipeline/context.ts";
import { sha256Hex } from "../../../core/records/index.ts";
import { type ByteStore, readJson, writeJson } from "../../../core/shards/byte-store.ts";
import { stageSummary } from "../../../core/stages/stage.ts";

export { EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT };

/** The pinned tools (batch-images/evaluate/requirements.lock). */
export const LMMS_EVAL_VERSION = "0.5.0";
export const VLLM_VERSION = "0.11.0";

export interface EvalLauncherOptions {
  store: ByteStore;
  runId: string;
  /** The pipeline bucket's name (trained models are `s3://<bucket>/runs/<id>/models/<m>/`). */
  bucket: string;
  workdir: string;
  dryRun: boolean;
  /** The Python with lmms-eval (the image's python3, or a CPU venv's). */
  python: string;
  /** Folder of run_lmms_eval.py, recipe_eval_model.py and recipe_eval_utils.py. */
  pythonDir: string;
  /** An OpenAI-compatible base URL serving every model under its name (base, sft, rl): no vLLM. */
  modelUrl?: string;
  /** Local dataset folders, one per task (`<dir>/<task>/`), in place of the Hub's (tests). */
  datasetsDir?: string;
  /** The environment lmms-eval and the verifier get (the verifier command, the judge's settings). */
  env: NodeJS.ProcessEnv;
  out: (line: string) => void;
  /** Replaces `vllm` (tests). */
  vllmCommand?: string[];
  /** GPUs and the memory of one, for the serving plan (nvidia-smi's when absent). */
  gpus?: { count: number; memoryMiB: number | null };
  /** Reads another bucket (an s3:// base model outside the pipeline bucket). */
  storeFor?: (bucket: string) => ByteStore;
  port?: number;
  startupSeconds?: number;
}

const shellQuote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);

async function exported(o: EvalLauncherOptions): Promise<Set<TrainedModel>> {
  const found = new Set<TrainedModel>();
  for (const m of TRAINED_MODELS)
    if (await o.store.exists(`${keys.modelPrefix(o.runId, m)}config.json`)) found.add(m);
  return found;
}

/** Writes the task folder lmms-eval includes: each benchmark's YAML and module, and the scoring module. */
function renderTasks(o: EvalLauncherOptions, config: RunConfig, benchmarks: EvalBenchmark[]): string {
  const dir = join(o.workdir, "tasks");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(o.pythonDir, "recipe_eval_utils.py"), join(dir, "recipe_eval_utils.py"));
  for (const b of benchmarks) {
    const datasetPath = o.datasetsDir ? join(o.datasetsDir, b.task) : undefined;
    if (datasetPath && !existsSync(datasetPath))
      throw new InputContractError(`no local dataset for ${b.task} at ${datasetPath}`);
    writeFileSync(
      join(dir, `${b.task}.yaml`),
      renderTaskYaml(b, {
        maxNewTokens: config.evaluation.maxNewTokens,
        instruction: config.teacher.systemPrompt,
        datasetPath,
      }),
    );
    writeFileSync(join(dir, `${b.task}.py`), taskModule(b));
  }
  return dir;
}

function gpusOf(o: EvalLauncherOptions): { count: number; memoryMiB: number | null } {
  if (o.gpus) return o.gpus;
  const r = spawnSync("nvidia-smi", ["--query-gpu=memory.total", "--format=csv,noheader,nounits"], {
    encoding: "utf8",
  });
  const lines = (r.stdout ?? "").split("\n").filter((l) => /\d/.test(l));
  return { count: lines.length, memoryMiB: lines.length ? Number(lines[0]!.replace(/\D/g, "")) : null };
}

/** The model's folder on local disk: an s3:// folder staged, a model id from the Hub's cache. */
async function localModel(o: EvalLauncherOptions, target: EvalTarget): Promise<string> {
  const folder = s3Folder(target.uri);
  if (!folder) {
    const problem = unloadable(target.uri, "evaluate");
    if (problem) throw new InputContractError(`${target.model}: ${problem}`);
    if (o.dryRun) return target.uri;
    const r = spawnSync(
      o.python,
      [
        "-c",
        "import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1]))",
        target.uri,
      ],
      { encoding: "utf8", env: o.env, stdio: ["ignore", "pipe", "inherit"] },
    );
    if (r.status !== 0) throw new Error(`cannot download ${target.uri} from the Hub`);
    return r.stdout.trim().split("\n").at(-1)!;
  }
  const store = folder.bucket === o.bucket || !o.storeFor ? o.store : o.storeFor(folder.bucket);
  // The architecture its config.json names must be one this image's transformers and vLLM load.
  const modelConfig = await readJson<{ architectures?: string[] }>(store, `${folder.prefix}config.json`);
  const arch = modelConfig?.architectures?.[0];
  const problem = arch ? unloadable(target.uri, "evaluate", arch) : null;
  if (problem) throw new InputContractError(`${target.model}: ${problem}`);
  const dir = join(o.workdir, "models", sha256Hex(target.uri).slice(0, 16));
  const staged = await stageModelFolder(store, target.uri, dir, { copy: !o.dryRun });
  o.out(
    `${target.model}: ${target.uri} (${staged.files} files, ${(staged.bytes / 1e9).toFixed(1)} GB) -> ${dir}`,
  );
  return dir;
}

interface Server {
  baseUrl: string;
  stop: () => Promise<void>;
}

/** Starts vLLM for one model and waits for /health; null in a dry run (the command is printed). */
async function serve(
  o: EvalLauncherOptions,
  config: RunConfig,
  target: EvalTarget,
  benchmarks: EvalBenchmark[],
): Promise<Server | null> {
  const path = await localModel(o, target);
  const configJson = existsSync(join(path, "config.json"))
    ? (JSON.parse(readFileSync(join(path, "config.json"), "utf8")) as Record<string, unknown>)
    : null;
  const index = existsSync(join(path, "model.safetensors.index.json"))
    ? (JSON.parse(readFileSync(join(path, "model.safetensors.index.json"), "utf8")) as Record<
        string,
        unknown
      >)
    : null;
  const gpus = gpusOf(o);
  let planArgs: string[] = ["<serving plan from the model's config.json and the GPUs>"];
  if (configJson) {
    const plan = planServe(modelFacts(configJson, index), {
      gpus: gpus.count,
      gpuMemoryBytes: gpus.memoryMiB ? gpus.memoryMiB * 2 ** 20 : null,
      maxModelLen: config.evaluation.maxNewTokens + PROMPT_TOKENS,
      maxImages: maxImagesPerPrompt(benchmarks),
    });
    if (!plan.ok && !o.dryRun)
      throw new InputContractError(`${target.model} (${target.uri}): ${plan.problem}`);
    if (plan.ok) planArgs = plan.args;
  }
  const port = o.port ?? 8000;
  const args = vllmServeArgs(path, target.model, port, config, planArgs);
  const argv = o.vllmCommand ? [...o.vllmCommand, ...args] : ["vllm", ...args];
  o.out(`vLLM command: ${argv.map(shellQuote).join(" ")}`);
  if (o.dryRun) return null;
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    stdio: "inherit",
    env: { ...o.env, OMP_NUM_THREADS: o.env.OMP_NUM_THREADS ?? "1" },
  });
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  const stop = async () => {
    if (exited) return;
    child.kill("SIGTERM");
    for (let i = 0; i < 30 && !exited; i++) await new Promise((r) => setTimeout(r, 1000));
    if (!exited) child.kill("SIGKILL");
  };
  const deadline = Date.now() + (o.startupSeconds ?? 2400) * 1000;
  for (;;) {
    if (exited) throw new Error(`vLLM exited during start-up (${target.model})`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`vLLM not healthy in ${o.startupSeconds ?? 2400} s (${target.model})`);
    }
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  return { baseUrl: `http://127.0.0.1:${port}/v1`, stop };
}

function findFiles(dir: string, match: (name: string) => boolean): string[] {
  const found: string[] = [];
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) found.push(...findFiles(p, match));
    else if (match(name)) found.push(p);
  }
  return found;
}

/** The verdicts lmms-eval logged, one per sample (the `verdict` metric of each). */
export function verdictsOfSamples(jsonl: string): (SampleVerdict & { reason?: string })[] {
  const verdicts: (SampleVerdict & { reason?: string })[] = [];
  for (const line of jsonl.split("\n")) {
    if (line.trim() === "") continue;
    const s = JSON.parse(line) as { verdict?: SampleVerdict & { reason?: string }; format_score?: number };
    if (!s.verdict) throw new Error("a logged sample has no verdict: not a task of this project");
    verdicts.push({
      correct: Boolean(s.verdict.correct),
      format: Number(s.format_score ?? 0),
      judged: Boolean(s.verdict.judged),
      reason: s.verdict.reason,
    });
  }
  return verdicts;
}

/** Runs one benchmark for one model and writes its EvalResult and samples. */
async function evaluateTask(
  o: EvalLauncherOptions,
  config: RunConfig,
  target: EvalTarget,
  baseUrl: string,
  b: EvalBenchmark,
  tasksDir: string,
): Promise<void> {
  const outputDir = join(o.workdir, "output", target.model, b.task);
  rmSync(outputDir, { recursive: true, force: true });
  mkdirSync(outputDir, { recursive: true });
  const command = lmmsEvalCommand(o.python, config, { served: target.model, baseUrl }, b.task, {
    entry: join(o.pythonDir, "run_lmms_eval.py"),
    tasksDir,
    outputDir,
  });
  o.out(`lmms-eval command: ${command.map(shellQuote).join(" ")}`);
  if (o.dryRun) return;
  const started = Date.now();
  const code = await new Promise<number>((resolve) => {
    const child = spawn(command[0]!, command.slice(1), {
      stdio: "inherit",
      env: {
        ...o.env,
        RECIPE_VERIFY_PRESET: config.verification.extractionPreset,
        RECIPE_EVAL_VERIFICATION: JSON.stringify(config.verification),
        // lmms-eval would otherwise ask wandb and the Hub's telemetry.
        WANDB_MODE: "disabled",
        HF_HUB_DISABLE_TELEMETRY: "1",
      },
    });
    child.on("exit", (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new Error(`lmms-eval exited with ${code} on ${b.task} (${target.model})`);
  const samplesFile = findFiles(outputDir, (n) => n.endsWith(`_samples_${b.task}.jsonl`))[0];
  if (!samplesFile) throw new Error(`lmms-eval logged no samples for ${b.task} (${target.model})`);
  const text = readFileSync(samplesFile, "utf8");
  const verdicts = verdictsOfSamples(text);
  // An answer the judge should have decided but could not reach is not a wrong answer: the benchmark
  // fails (transient) rather than report a score the judge's outage lowered.
  const unjudged = verdicts.filter((v) => v.reason?.startsWith("judge_unavailable")).length;
  if (unjudged > 0)
    throw new Error(
      `${unjudged} answer(s) of ${b.task} (${target.model}) needed the judge, which was unavailable`,
    );
  const scored = aggregateVerdicts(verdicts);
  const samplesKey = keys.evalSamples(o.runId, target.model, b.task);
  await o.store.write(samplesKey, gzipSync(text));
  const result: EvalResult = {
    model: target.model,
    modelUri: target.uri,
    task: b.task,
    ...scored,
    preset: config.verification.extractionPreset,
    samplesKey,
    tools: { lmmsEval: LMMS_EVAL_VERSION, ...(o.modelUrl ? {} : { vllm: VLLM_VERSION }) },
    seconds: Math.round((Date.now() - started) / 1000),
  };
  // The result last: its presence is what a restarted job skips on.
  await writeJson(o.store, keys.evalResult(o.runId, target.model, b.task), result);
  o.out(
    `${target.model} ${b.task}: accuracy ${(scored.accuracy * 100).toFixed(1)} %, format ${scored.format.toFixed(3)}, ${scored.samples} questions, judge ${scored.judged.asked}`,
  );
}

export async function runEvalLauncher(o: EvalLauncherOptions): Promise<number> {
  let server: Server | null = null;
  try {
    const config = await loadConfig(o.store, o.runId);
    if (!config.evaluation.enabled) throw new InputContractError("evaluation.enabled is false in this run");
    const benchmarks = evalBenchmarks(config);
    const targets = evalTargets(config, o.bucket, o.runId, await exported(o));
    o.out(`models: ${targets.map((t) => `${t.model}=${t.uri}`).join(", ")}`);
    o.out(`tasks: ${benchmarks.map((b) => b.task).join(", ")}`);
    mkdirSync(o.workdir, { recursive: true });
    const tasksDir = renderTasks(o, config, benchmarks);
    if (config.evaluation.maxNewTokens > 4096)
      o.out(
        `max new tokens: ${config.evaluation.maxNewTokens} (lmms-eval ${LMMS_EVAL_VERSION}'s OpenAI-compatible type caps requests at 4096; recipe_eval_model.py lifts that cap)`,
      );
    let done = 0;
    for (const target of targets) {
      const todo: EvalBenchmark[] = [];
      for (const b of benchmarks) {
        if (!o.dryRun && (await o.store.exists(keys.evalResult(o.runId, target.model, b.task)))) {
          o.out(`${target.model} ${b.task}: done before, skipped`);
          done += 1;
        } else todo.push(b);
      }
      if (todo.length === 0) continue;
      server = o.modelUrl ? null : await serve(o, config, target, benchmarks);
      const baseUrl = o.modelUrl ?? server?.baseUrl ?? "http://127.0.0.1:8000/v1";
      for (const b of todo) {
        await evaluateTask(o, config, target, baseUrl, b, tasksDir);
        done += 1;
      }
      await server?.stop();
      server = null;
    }
    if (o.dryRun) {
      o.out("dry run: nothing evaluated");
      return EXIT_OK;
    }
    const results: EvalResult[] = [];
    for (const t of targets)
      for (const b of benchmarks) {
        const r = await readJson<EvalResult>(o.store, keys.evalResult(o.runId, t.model, b.task));
        if (r) results.push(r);
      }
    await writeJson(
      o.store,
      keys.success(o.runId, "evaluate"),
      stageSummary("evaluate", {
        out: results.length,
        extra: { results: done },
        models: targets.map((t) => t.model),
        tasks: benchmarks.map((b) => b.task),
        tools: { lmmsEval: LMMS_EVAL_VERSION, ...(o.modelUrl ? {} : { vllm: VLLM_VERSION }) },
      }),
    );
    return EXIT_OK;
  } catch (err) {
    o.out(`evaluate failed: ${(err as Error).message}`);
    return err instanceof InputContractError ? EXIT_BAD_INPUT : EXIT_TRANSIENT;
  } finally {
    await server?.stop();
  }
}
