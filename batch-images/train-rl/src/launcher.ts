/**
 * The train-rl launcher: downloads the run's verl Parquet, renders verl's GSPO configuration from
 * run.json, starts `verl.trainer.main_ppo` with our reward glue, copies checkpoints to S3 on a
 * schedule, and resumes from the newest complete checkpoint after a restart.
 *
 *   launcher [--dry-run] [--rows N]
 *
 * --dry-run validates the dataset and the reward on N rows and prints the exact verl command and
 * config, without a GPU. Exit codes: 0 done, 3 bad input, 75 transient (Batch retries; we resume).
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import type { RunConfig } from "../../../core/config/schema.ts";
import { ParquetParts, VERL_SCHEMA } from "../../../core/datasets/index.ts";
import { EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT, InputContractError } from "../../../core/errors.ts";
import { keys } from "../../../core/layout/index.ts";
import { unloadable } from "../../../core/models/architectures.ts";
import { s3Folder, stageModelFolder } from "../../../core/models/stage.ts";
import { loadConfig } from "../../../core/pipeline/context.ts";
import { type ByteStore, listAll, readJson, writeJson } from "../../../core/shards/byte-store.ts";
import { FsStore } from "../../../core/shards/fs-store.ts";
import { parquetRowCount, readParquetRows } from "../../../core/shards/parquet.ts";
import { stageSummary } from "../../../core/stages/stage.ts";
import { checkNodeCount, type NodeRole, nodeRole, trainingEnv } from "../../../core/train/cluster.ts";
import { type RlStart, rlStart } from "../../../core/train/start-model.ts";
import { heldOutRows, validationCount } from "../../../core/train/validation.ts";
import {
  newestCheckpoint,
  VERL_TRACKER_FILE,
  type VerlPaths,
  verlCommand,
} from "../../../core/train/verl.ts";
import { type ClusterOptions, finishCluster, joinCluster, startHead } from "./cluster-node.ts";

export { EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT };

export interface LauncherOptions {
  store: ByteStore;
  runId: string;
  workdir: string;
  dryRun: boolean;
  rows: number;
  /** The reward glue file verl loads. */
  rewardPath: string;
  python: string;
  /** Replaces `python3 -m verl.trainer.main_ppo` (tests). */
  verlCommand?: string[];
  out: (line: string) => void;
  /** The container's environment (AWS Batch's multi-node variables); process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Multi-node: how long nodes wait for each other, and how often they look. */
  joinTimeoutMs?: number;
  pollMs?: number;
  /** Reads another bucket's objects (an s3:// start model outside the pipeline bucket). */
  storeFor?: (bucket: string) => ByteStore;
  /** Replaces the `ray` executable (tests). */
  rayCommand?: string[];
  /** Replaces `python3 -m verl.model_merger` (tests). */
  mergeCommand?: string[];
}

const CHECKPOINT_DONE = "_COMPLETE";

function checkpointsPrefix(runId: string): string {
  return `${keys.stagePrefix(runId, "train-rl")}checkpoints/`;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./[\]-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** Checks verl's columns on the first N rows; returns the problems found. */
async function validateDataset(
  dataDir: string,
  files: string[],
  rows: number,
): Promise<{ problems: string[]; sample: Record<string, unknown>[] }> {
  const local = new FsStore(dataDir);
  const problems: string[] = [];
  const sample: Record<string, unknown>[] = [];
  for (const file of files) {
    for await (const row of readParquetRows(local, file)) {
      if (sample.length >= rows) break;
      sample.push(row);
      const at = `${file} row ${sample.length - 1}`;
      if (typeof row.data_source !== "string") problems.push(`${at}: data_source is not a string`);
      const prompt = row.prompt as { role: string; content: string }[] | undefined;
      if (
        !Array.isArray(prompt) ||
        !prompt.every((m) => typeof m.role === "string" && typeof m.content === "string")
      ) {
        problems.push(`${at}: prompt is not a list of {role, content}`);
      }
      const images = (row.images as unknown[] | undefined) ?? [];
      const markers = (prompt?.map((m) => m.content).join("") ?? "").split("<image>").length - 1;
      if (markers !== images.length)
        problems.push(`${at}: ${markers} <image> markers for ${images.length} images`);
      const rm = row.reward_model as { style?: unknown; ground_truth?: unknown } | undefined;
      if (rm?.style !== "rule" || typeof rm.ground_truth !== "string" || rm.ground_truth === "") {
        problems.push(`${at}: reward_model is not {style: "rule", ground_truth}`);
      }
      const extra = row.extra_info as { index?: unknown } | undefined;
      if (typeof extra?.index !== "bigint" && typeof extra?.index !== "number")
        problems.push(`${at}: extra_info.index is missing`);
    }
  }
  if (sample.length === 0) problems.push("the RL dataset has no rows");
  return { problems, sample };
}

/** Runs the reward glue on the sample: a perfect answer must score 1, an empty response 0. */
function checkReward(o: LauncherOptions, sample: Record<string, unknown>[]): string[] {
  const cases = sample.map((r) => ({
    ground_truth: (r.reward_model as { ground_truth: string }).ground_truth,
    extra_info: { choices: (r.extra_info as { choices?: string[] }).choices ?? [] },
  }));
  const script = `
import json, sys, importlib.util
spec = importlib.util.spec_from_file_location("recipe_reward", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
cases = json.load(sys.stdin)
good = m.compute_score_batch(["dry"] * len(cases), ["<think>checking</think><answer>" + c["ground_truth"] + "</answer>" for c in cases], [c["ground_truth"] for c in cases], [c["extra_info"] for c in cases])
bad = m.compute_score_batch(["dry"] * len(cases), ["" for c in cases], [c["ground_truth"] for c in cases], [c["extra_info"] for c in cases])
print(json.dumps({"good": [g["score"] for g in good], "bad": [b["score"] for b in bad]}))
`;
  const r = spawnSync(o.python, ["-c", script, o.rewardPath], {
    input: JSON.stringify(cases),
    encoding: "utf8",
  });
  if (r.status !== 0) return [`the reward glue failed: ${r.stderr.trim().split("\n").at(-1)}`];
  const { good, bad } = JSON.parse(r.stdout) as { good: number[]; bad: number[] };
  const problems: string[] = [];
  good.forEach((s, i) => {
    if (Math.abs(s - 1) > 1e-9) problems.push(`row ${i}: a perfect answer scored ${s}, not 1`);
  });
  bad.forEach((s, i) => {
    if (s !== 0) problems.push(`row ${i}: an empty response scored ${s}, not 0`);
  });
  return problems;
}

/** A node's marker in a step folder: its shards of that checkpoint are all in S3. */
const nodeMarker = (index: number) => `_NODE_${index}`;

/**
 * Copies this node's finished checkpoint folders to S3. A folder is finished when verl's tracker
 * names it (the driver writes it after the save), when a newer one exists, or on the final pass.
 * Each node marks the steps it uploaded; a step is complete (`_COMPLETE`, the only thing a resume
 * trusts) once every node's marker is there, which the main node checks.
 */
async function syncUp(
  o: LauncherOptions,
  checkpointDir: string,
  uploaded: Set<string>,
  role: NodeRole,
  keep: number,
  final = false,
): Promise<number> {
  let steps = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync(checkpointDir).filter((d) => /^global_step_\d+$/.test(d));
  } catch {
    return 0;
  }
  const stepOf = (d: string) => Number(d.slice("global_step_".length));
  const newest = Math.max(...entries.map(stepOf));
  let tracked = -1;
  try {
    tracked = Number(readFileSync(join(checkpointDir, VERL_TRACKER_FILE), "utf8").trim());
  } catch {
    // No tracker on this node (verl's driver runs on the main node) or none written yet.
  }
  const prefix = checkpointsPrefix(o.runId);
  for (const dir of entries) {
    if (uploaded.has(dir)) continue;
    if (!final && stepOf(dir) > tracked && stepOf(dir) === newest) continue; // may still be written
    const root = join(checkpointDir, dir);
    const walk = (p: string): string[] =>
      statSync(p).isDirectory() ? readdirSync(p).flatMap((e) => walk(join(p, e))) : [p];
    const local = new FsStore(checkpointDir);
    for (const file of walk(root)) {
      const rel = relative(checkpointDir, file).split("\\").join("/");
      await o.store.write(`${prefix}${rel}`, await local.read(rel));
    }
    await o.store.write(`${prefix}${dir}/${nodeMarker(role.index)}`, "");
    uploaded.add(dir);
    steps++;
  }
  if (role.isMain) await completeSteps(o, role, uploaded, final);
  pruneLocal(checkpointDir, entries, uploaded, keep);
  return steps;
}

/**
 * Keeps at most `keep` checkpoint folders on this node's disk. verl deletes old checkpoints on rank 0
 * only (it assumes a shared filesystem), so without this every other node keeps all of them (about
 * 12 GB a save, a full root volume within the run). Only folders already in S3 are deleted.
 */
function pruneLocal(checkpointDir: string, entries: string[], uploaded: Set<string>, keep: number) {
  const stepOf = (d: string) => Number(d.slice("global_step_".length));
  const newestFirst = [...entries].sort((a, b) => stepOf(b) - stepOf(a));
  for (const dir of newestFirst.slice(keep)) {
    if (uploaded.has(dir)) rmSync(join(checkpointDir, dir), { recursive: true, force: true });
  }
}

/**
 * Main node: writes `_COMPLETE` for each uploaded step every node has marked. On the final pass it
 * waits (bounded) for the other nodes' last uploads, which start when it says training is done.
 */
async function completeSteps(o: LauncherOptions, role: NodeRole, uploaded: Set<string>, final: boolean) {
  const prefix = checkpointsPrefix(o.runId);
  const until = Date.now() + (final && role.nodes > 1 ? (o.joinTimeoutMs ?? 20 * 60_000) : 0);
  for (const dir of [...uploaded].sort()) {
    const done = `${prefix}${dir}/${CHECKPOINT_DONE}`;
    for (;;) {
      if (await o.store.exists(done)) break;
      const marks = await Promise.all(
        Array.from({ length: role.nodes }, (_, i) => o.store.exists(`${prefix}${dir}/${nodeMarker(i)}`)),
      );
      // The marker goes last: a step without it is an interrupted upload and is never resumed from.
      if (marks.every(Boolean)) {
        await o.store.write(done, "");
        break;
      }
      if (Date.now() >= until) break;
      await new Promise((r) => setTimeout(r, o.pollMs ?? 5_000));
    }
  }
}

/**
 * verl 0.6.1's model merger (verl/model_merger/base_model_merger.py): the FSDP shards of one
 * checkpoint's actor (and its `huggingface/` config, tokenizer and processor) into a Hugging Face folder.
 */
export function modelMergerCommand(python: string, actorDir: string, targetDir: string): string[] {
  return [
    python,
    "-m",
    "verl.model_merger",
    "merge",
    "--backend",
    "fsdp",
    "--local_dir",
    actorDir,
    "--target_dir",
    targetDir,
  ];
}

/**
 * The trained policy as a Hugging Face folder at `runs/<id>/models/rl/` (what the evaluate job
 * serves): the newest complete checkpoint, every node's shards, merged by verl's model merger. Its
 * config.json goes last, so a folder with one is whole.
 */
async function exportModel(
  o: LauncherOptions,
  checkpointDir: string,
): Promise<{ step: number; files: number }> {
  const step = await restoreNewest(o, checkpointDir);
  if (step === null)
    throw new InputContractError("training ended without a complete checkpoint: no RL model to export");
  const target = join(o.workdir, "model-rl");
  rmSync(target, { recursive: true, force: true });
  const command = modelMergerCommand(o.python, join(checkpointDir, `global_step_${step}`, "actor"), target);
  const argv = o.mergeCommand ? [...o.mergeCommand, ...command.slice(3)] : command;
  o.out(`exporting global_step_${step}: ${argv.join(" ")}`);
  const merged = spawnSync(argv[0]!, argv.slice(1), { stdio: "inherit" });
  if (merged.status !== 0)
    throw new Error(`verl's model merger exited with ${merged.status ?? merged.signal}`);
  const walk = (p: string): string[] =>
    statSync(p).isDirectory() ? readdirSync(p).flatMap((e) => walk(join(p, e))) : [p];
  const files = walk(target).map((f) => relative(target, f).split("\\").join("/"));
  if (!files.includes("config.json"))
    throw new Error(`verl's model merger wrote no config.json in ${target}`);
  const prefix = keys.modelPrefix(o.runId, "rl");
  const local = new FsStore(target);
  for (const rel of [...files.filter((f) => f !== "config.json"), "config.json"])
    await o.store.write(`${prefix}${rel}`, await local.read(rel));
  o.out(`RL model: ${files.length} files -> ${prefix}`);
  return { step, files: files.length };
}

async function restoreNewest(o: LauncherOptions, checkpointDir: string): Promise<number | null> {
  const prefix = checkpointsPrefix(o.runId);
  const all = await listAll(o.store, prefix);
  const complete = all.filter((k) => k.endsWith(`/${CHECKPOINT_DONE}`)).map((k) => k.slice(prefix.length));
  const step = newestCheckpoint(complete);
  if (step === null) return null;
  const local = new FsStore(checkpointDir);
  for (const key of all.filter(
    (k) => k.startsWith(`${prefix}global_step_${step}/`) && !k.endsWith(CHECKPOINT_DONE),
  )) {
    await local.write(key.slice(prefix.length), await o.store.read(key));
  }
  writeFileSync(join(checkpointDir, VERL_TRACKER_FILE), String(step));
  return step;
}

/**
 * Splits the downloaded RL parts into training parts and a held-out validation part (a seeded
 * sample: core/train/validation.ts), written in verl's schema next to them. Every node computes the
 * same split.
 */
export async function splitValidation(
  o: Pick<LauncherOptions, "out">,
  dataDir: string,
  names: string[],
  t: { validationPrompts: number; validationSeed: number },
): Promise<{ dir: string; trainFiles: string[]; valFiles: string[]; trainPrompts: number }> {
  const local = new FsStore(dataDir);
  let total = 0;
  for (const n of names) total += await parquetRowCount(local, n);
  const held = heldOutRows(total, validationCount(total, t.validationPrompts), t.validationSeed);
  const dir = join(dataDir, "split");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const out = new FsStore(dir);
  const pad = (n: number) => String(n).padStart(5, "0");
  const train = new ParquetParts(out, (part) => `train-${pad(part)}.parquet`, VERL_SCHEMA);
  const val = new ParquetParts(out, (part) => `val-${pad(part)}.parquet`, VERL_SCHEMA);
  let at = 0;
  for (const n of names) {
    for await (const row of readParquetRows(local, n)) {
      const images = (row.images as { bytes?: Uint8Array | null }[] | null) ?? [];
      const bytes = images.reduce((sum, im) => sum + (im.bytes?.length ?? 0), 1024);
      await (held.has(at) ? val : train).add(row, bytes);
      at++;
    }
  }
  await train.flush();
  if (held.size > 0) await val.flush();
  const trainFiles = train.parts.map((p) => join(dir, p.key));
  o.out(
    `validation: ${held.size} of ${total} prompts held out (seed ${t.validationSeed}), ${total - held.size} to train on`,
  );
  return {
    dir,
    trainFiles,
    // A one-prompt set has nothing to hold out (and trains 0 steps, which is refused).
    valFiles: held.size > 0 ? val.parts.map((p) => join(dir, p.key)) : trainFiles,
    trainPrompts: total - held.size,
  };
}

/**
 * The steps verl will run: `trainer.total_training_steps`, unless the epochs over this many prompts
 * end training first (verl stops at whichever comes first).
 */
export function plannedSteps(
  t: { totalSteps: number; epochs: number; trainBatchSize: number },
  prompts: number,
) {
  const perEpoch = Math.floor(prompts / t.trainBatchSize);
  const byEpochs = perEpoch * t.epochs;
  return byEpochs < t.totalSteps
    ? { steps: byEpochs, endedBy: "epochs" as const, perEpoch }
    : { steps: t.totalSteps, endedBy: "totalSteps" as const, perEpoch };
}

/** What each start names in messages. */
const START_LABEL: Record<RlStart["from"], string> = {
  explicit: "training.rl.startModel",
  sft: "this run's SFT model (train-sft's output)",
  base: "training.sft.baseModel (SFT off)",
};

/** The start model (core/train/start-model.ts): the run's SFT output is in the pipeline bucket. */
function startModelOf(o: LauncherOptions, config: RunConfig): RlStart {
  const bucket = o.env?.RECIPE_BUCKET ?? process.env.RECIPE_BUCKET;
  if (!bucket && config.training.sft.enabled && config.training.rl.startModel === undefined)
    throw new InputContractError("RECIPE_BUCKET is not set: RL starts from this run's SFT model in it");
  // A file:// folder (tests, local development) stands in for every bucket: any name reads it.
  const start = rlStart(config, !bucket || bucket.startsWith("file://") ? "pipeline" : bucket, o.runId);
  o.out(`start model, ${START_LABEL[start.from]}: ${start.model}`);
  return start;
}

/**
 * An `s3://bucket/prefix` start model is copied to local disk first: verl loads a model id or a
 * local path (it copies only hdfs:// paths itself). Every node of a multi-node job does this.
 */
async function stageStartModel(o: LauncherOptions, start: RlStart, dir: string): Promise<string> {
  const uri = start.model;
  const label = START_LABEL[start.from];
  const folder = s3Folder(uri);
  if (!folder) return uri;
  const pipelineBucket = o.env?.RECIPE_BUCKET ?? process.env.RECIPE_BUCKET;
  const store = folder.bucket === pipelineBucket || !o.storeFor ? o.store : o.storeFor(folder.bucket);
  try {
    // The architecture its config.json names must be one this image's transformers and vLLM load
    // (an SFT checkpoint's folder name says nothing about it).
    const modelConfig = await readJson<{ architectures?: string[] }>(store, `${folder.prefix}config.json`);
    // A dry run after a dry-run train-sft (the embedded runtime without lmms-engine) has no SFT model
    // to check: it says so and checks the rest. A real run fails below (no config.json under it).
    if (!modelConfig && start.from === "sft" && o.dryRun) {
      o.out(`start model: ${uri} has no model yet (train-sft ran as a dry run?): not checked`);
      return dir;
    }
    const arch = modelConfig?.architectures?.[0];
    const problem = arch ? unloadable(uri, "train-rl", arch) : null;
    if (problem) throw new InputContractError(`${label} ${problem}`);
    const staged = await stageModelFolder(store, uri, dir, { copy: !o.dryRun });
    o.out(`start model: ${uri} (${staged.files} files, ${(staged.bytes / 1e9).toFixed(1)} GB) -> ${dir}`);
  } catch (err) {
    if (err instanceof InputContractError && !err.message.startsWith(label))
      throw new InputContractError(`${label} ${err.message}`);
    throw err;
  }
  return dir;
}

export async function runLauncher(o: LauncherOptions): Promise<number> {
  try {
    const config = await loadConfig(o.store, o.runId);
    const rl = await readJson<{ files?: { parquet: string[] } }>(
      o.store,
      keys.success(o.runId, "write-rl-dataset"),
    );
    const parquet = rl?.files?.parquet ?? [];
    if (parquet.length === 0)
      throw new InputContractError("no RL dataset: write-rl-dataset has not finished or wrote no rows");
    const dataDir = join(o.workdir, "data");
    const checkpointDir = join(o.workdir, "checkpoints");
    mkdirSync(dataDir, { recursive: true });
    mkdirSync(checkpointDir, { recursive: true });
    const local = new FsStore(dataDir);
    const names: string[] = [];
    for (const key of parquet) {
      const name = key.slice(key.lastIndexOf("/") + 1);
      await local.write(name, await o.store.read(key));
      names.push(name);
    }
    const role = nodeRole(o.env ?? process.env);
    if (role.nodes > 1) checkNodeCount(role, config.training.rl.nodes);
    const keep = config.training.rl.maxCheckpointsToKeep;
    const split = await splitValidation(o, dataDir, names, config.training.rl);
    const prompts = split.trainPrompts;
    const plan = plannedSteps(config.training.rl, prompts);
    o.out(
      plan.endedBy === "epochs"
        ? `steps: ${plan.steps} (${config.training.rl.epochs} epochs of ${plan.perEpoch} steps over ${prompts} prompts end training before totalSteps ${config.training.rl.totalSteps})`
        : `steps: ${plan.steps} (totalSteps; ${prompts} prompts give ${plan.perEpoch} steps an epoch)`,
    );
    const noSteps =
      plan.steps === 0
        ? `the RL set has ${prompts} prompts, fewer than one batch (training.rl.trainBatchSize ${config.training.rl.trainBatchSize}): verl would train 0 steps`
        : null;
    if (noSteps && !o.dryRun) throw new InputContractError(noSteps);
    const paths: VerlPaths = {
      trainFiles: split.trainFiles,
      valFiles: split.valFiles,
      checkpointDir,
      rewardPath: o.rewardPath,
      modelPath: await stageStartModel(o, startModelOf(o, config), join(o.workdir, "model")),
    };
    // The run's settings and the network interfaces, for verl's driver and every Ray worker.
    const workerEnv = trainingEnv(o.env ?? process.env, {
      verifyPreset: config.verification.extractionPreset,
    });
    const command = verlCommand(config, paths, workerEnv);
    const cluster: ClusterOptions = {
      store: o.store,
      runId: o.runId,
      role,
      gpusPerNode: config.training.rl.gpusPerNode,
      dryRun: o.dryRun,
      joinTimeoutMs: o.joinTimeoutMs ?? 20 * 60_000,
      pollMs: o.pollMs ?? 5_000,
      out: o.out,
      rayCommand: o.rayCommand,
      env: workerEnv,
    };
    if (role.nodes > 1 && !role.isMain) {
      // Another node: its GPUs join the head; its shards of each checkpoint go to S3 from here.
      const resumed = o.dryRun ? null : await restoreNewest(o, checkpointDir);
      const uploaded = new Set<string>(resumed === null ? [] : [`global_step_${resumed}`]);
      const status = await joinCluster(cluster, async (final) => {
        if (!o.dryRun) await syncUp(o, checkpointDir, uploaded, role, keep, final);
      });
      o.out(`node ${role.index}: the main node reports training ${status}; leaving`);
      return EXIT_OK;
    }
    if (role.nodes > 1) await startHead(cluster);
    if (o.dryRun) {
      const { problems, sample } = await validateDataset(
        split.dir,
        split.trainFiles.map((f) => f.slice(split.dir.length + 1)),
        o.rows,
      );
      if (noSteps) problems.push(noSteps);
      if (problems.length === 0) problems.push(...checkReward(o, sample));
      o.out(`dataset: ${names.length} file(s), ${sample.length} row(s) checked`);
      o.out(`reward: ${problems.length === 0 ? "perfect answers score 1, empty responses 0" : "FAILED"}`);
      for (const p of problems) o.out(`problem: ${p}`);
      o.out("verl command:");
      o.out([command.slice(0, 3).join(" "), ...command.slice(3).map(shellQuote)].join(" \\\n  "));
      o.out(`config: ${JSON.stringify(config.training.rl)}`);
      if (role.nodes > 1) await finishCluster(cluster, problems.length === 0 ? "succeeded" : "failed");
      return problems.length === 0 ? EXIT_OK : EXIT_BAD_INPUT;
    }
    const resumed = await restoreNewest(o, checkpointDir);
    o.out(resumed === null ? "starting from the start model" : `resuming from global_step_${resumed}`);
    const uploaded = new Set<string>(resumed === null ? [] : [`global_step_${resumed}`]);
    // A stand-in (tests) gets the same overrides verl would.
    const argv = o.verlCommand ? [...o.verlCommand, ...command.slice(3)] : command;
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: "inherit",
      env: {
        ...process.env,
        ...workerEnv,
        // verl's ray.init() joins the cluster this node's head runs (multi-node) instead of its own.
        ...(role.nodes > 1 ? { RAY_ADDRESS: "auto" } : {}),
      },
    });
    let stopping = false;
    const onTerm = () => {
      stopping = true;
      child.kill("SIGTERM");
    };
    process.once("SIGTERM", onTerm);
    const timer = setInterval(() => {
      syncUp(o, checkpointDir, uploaded, role, keep).catch((err) =>
        o.out(`checkpoint sync failed (will retry): ${(err as Error).message}`),
      );
    }, config.training.rl.checkpointSyncMinutes * 60_000);
    const code = await new Promise<number>((resolve) => child.on("exit", (c) => resolve(c ?? 1)));
    clearInterval(timer);
    process.removeListener("SIGTERM", onTerm);
    if (role.nodes > 1) await finishCluster(cluster, code === 0 && !stopping ? "succeeded" : "failed");
    await syncUp(o, checkpointDir, uploaded, role, keep, true);
    if (code !== 0 || stopping) {
      o.out(`verl exited with ${code}; checkpoints are in S3, a retry resumes from the newest`);
      return EXIT_TRANSIENT;
    }
    const model = await exportModel(o, checkpointDir);
    await writeJson(
      o.store,
      keys.success(o.runId, "train-rl"),
      stageSummary("train-rl", {
        extra: {
          checkpoints: uploaded.size,
          steps: plan.steps,
          prompts,
          nodes: role.nodes,
          exportedStep: model.step,
        },
        checkpoints: checkpointsPrefix(o.runId),
        model: keys.modelPrefix(o.runId, "rl"),
      }),
    );
    return EXIT_OK;
  } catch (err) {
    o.out(`train-rl failed: ${(err as Error).message}`);
    return err instanceof InputContractError ? EXIT_BAD_INPUT : EXIT_TRANSIENT;
  }
}

export { parseLauncherArgs } from "../../../core/train/launcher-args.ts";
