/**
 * The train-sft launcher: downloads the run's SFT set in the lmms-engine layout (its Parquet files
 * and images) and the model, renders lmms-engine's config from run.json (core/train/lmms-engine.ts),
 * runs `torchrun -m lmms_engine.launch.cli` on every node, copies checkpoints to S3 on a schedule
 * (core/train/checkpoints.ts), resumes from the newest complete one after a restart, and on the main
 * node exports the final model as a Hugging Face folder with a model card, then `_SUCCESS`.
 *
 *   launcher [--dry-run] [--rows N]
 *
 * --dry-run (or RECIPE_TRAIN_DRY_RUN=1) checks the SFT Parquet's rows and their images, renders the
 * config and prints the exact torchrun command, writing nothing. Exit codes: 0 done, 3 bad input,
 * 75 transient (Batch retries; we resume).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { createInterface } from "node:readline";
import pLimit from "p-limit";
import type { RunConfig } from "../../../core/config/schema.ts";
import { EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT, InputContractError } from "../../../core/errors.ts";
import { keys } from "../../../core/layout/index.ts";
import { s3Folder, stageModelFolder } from "../../../core/models/stage.ts";
import { loadConfig } from "../../../core/pipeline/context.ts";
import { type ByteStore, listAll, readJson, writeJson } from "../../../core/shards/byte-store.ts";
import { FsStore } from "../../../core/shards/fs-store.ts";
import { readParquetRows } from "../../../core/shards/parquet.ts";
import { stageSummary } from "../../../core/stages/stage.ts";
import {
  CheckpointSync,
  checkResumeWorldSize,
  lmmsCheckpoint,
  nodeRanks,
} from "../../../core/train/checkpoints.ts";
import { checkNodeCount, nodeRole, trainingEnv } from "../../../core/train/cluster.ts";
import {
  CPU_OVERRIDES,
  checkpointStep,
  type LmmsDevice,
  lmmsEngineConfig,
  lmmsEngineEnv,
  parseMetricsLine,
  QWEN25VL_ARCHITECTURE,
  QWEN25VL_DECODER_LAYER,
  type StepMetrics,
  torchrunCommand,
  torchrunNodeRank,
  toYaml,
} from "../../../core/train/lmms-engine.ts";
import { modelCard, type TrainLog } from "./model-card.ts";

export { EXIT_BAD_INPUT, EXIT_OK, EXIT_TRANSIENT };

/** The lmms-engine release the image pins (requirements.in); the model card names it. */
export const LMMS_ENGINE_VERSION = "0.1.2";

export interface LauncherOptions {
  store: ByteStore;
  runId: string;
  workdir: string;
  dryRun: boolean;
  rows: number;
  /** The Python with lmms-engine (the image's python3; a CPU virtual environment locally). */
  python: string;
  /** `cuda` in the image; `cpu` runs the same lmms-engine with one process over gloo (core/train/lmms-engine.ts). */
  device: LmmsDevice;
  /** export_hf.py (FSDP2 shards -> Hugging Face folder). */
  exportScript: string;
  out: (line: string) => void;
  /** The container's environment (AWS Batch's multi-node variables); process.env by default. */
  env?: NodeJS.ProcessEnv;
  /** Main node: how long it waits for the other nodes' last checkpoint uploads, and how often it looks. */
  joinTimeoutMs?: number;
  pollMs?: number;
  /** Checkpoint copy interval; training.sft.checkpointSyncMinutes by default. */
  syncMs?: number;
  /** A checkpoint folder counts as written once nothing in it changed for this long. */
  settleMs?: number;
  /** Reads another bucket's objects (an s3:// base model outside the pipeline bucket). */
  storeFor?: (bucket: string) => ByteStore;
  now?: () => number;
}

const SFT_WRITER = "write-sft-dataset";
const checkpointsPrefix = (runId: string) => `${keys.stagePrefix(runId, "train-sft")}checkpoints/`;
/** Progress that outlives an attempt: each attempt's wall time and every step's loss. */
const trainLogKey = (runId: string) => `${keys.stagePrefix(runId, "train-sft")}train-log.json`;

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./[\]-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

type LmmsContent = { type?: string; text?: string | null; image_url?: { url?: string } | null };

/** Checks one lmms-engine-layout row; returns its problems and the image paths it names. */
export function checkRow(row: Record<string, unknown>, at: string): { problems: string[]; images: string[] } {
  const problems: string[] = [];
  const images: string[] = [];
  if (typeof row.id !== "string" || row.id === "") problems.push(`${at}: id is missing`);
  const messages = row.messages as { role?: string; content?: LmmsContent[] }[] | null | undefined;
  if (!Array.isArray(messages) || messages.length === 0) {
    problems.push(`${at}: messages is not a list of turns`);
    return { problems, images };
  }
  for (const [i, m] of messages.entries()) {
    if (!["system", "user", "assistant"].includes(m.role ?? ""))
      problems.push(`${at}: turn ${i} has role ${JSON.stringify(m.role)}`);
    if (!Array.isArray(m.content) || m.content.length === 0) {
      problems.push(`${at}: turn ${i} has no content items`);
      continue;
    }
    for (const c of m.content) {
      if (c.type === "text" && typeof c.text === "string") continue;
      if (c.type === "image_url" && typeof c.image_url?.url === "string" && c.image_url.url !== "") {
        const url = c.image_url.url;
        if (url.startsWith("/") || url.split("/").includes(".."))
          problems.push(`${at}: image path ${url} is not relative to the dataset folder`);
        else images.push(url);
        continue;
      }
      problems.push(`${at}: turn ${i} has a content item that is neither text nor an image_url`);
    }
  }
  if (messages.at(-1)?.role !== "assistant") problems.push(`${at}: the last turn is not the assistant's`);
  return { problems, images };
}

/** Reads the SFT Parquet (all rows, or the first `limit`), checking every row; returns the problems and image paths. */
async function checkDataset(
  dir: string,
  names: string[],
  limit: number,
): Promise<{ rows: number; problems: string[]; images: Set<string> }> {
  const local = new FsStore(dir);
  const problems: string[] = [];
  const images = new Set<string>();
  let rows = 0;
  for (const name of names) {
    let i = 0;
    for await (const row of readParquetRows(local, name)) {
      if (rows >= limit) break;
      const r = checkRow(row, `${name} row ${i++}`);
      problems.push(...r.problems);
      for (const im of r.images) images.add(im);
      rows++;
    }
  }
  if (rows === 0) problems.push("the SFT set has no rows");
  return { rows, problems: problems.slice(0, 20), images };
}

/** The config renders Qwen2.5-VL's processor and FSDP2 wrap unit: another architecture is refused up front. */
function checkArchitecture(uri: string, architectures: string[] | undefined) {
  const arch = architectures?.[0];
  if (arch && arch !== QWEN25VL_ARCHITECTURE)
    throw new InputContractError(
      `training.sft.baseModel ${uri} is a ${arch}; train-sft trains ${QWEN25VL_ARCHITECTURE} (lmms-engine's qwen2_5_vl processor, ${QWEN25VL_DECODER_LAYER} wrapping)`,
    );
}

/**
 * The model lmms-engine loads: an s3:// Hugging Face folder is copied to local disk (every node); a
 * local folder is used as it is; a model id is fetched from the Hub before training (lmms-engine
 * runs with HF_HUB_OFFLINE=1, as the recipe's launch script).
 */
async function stageBaseModel(
  o: LauncherOptions,
  config: RunConfig,
  dir: string,
): Promise<{ path: string; fetch?: string }> {
  const uri = config.training.sft.baseModel;
  const folder = s3Folder(uri);
  if (folder) {
    const pipelineBucket = o.env?.RECIPE_BUCKET ?? process.env.RECIPE_BUCKET;
    const store = folder.bucket === pipelineBucket || !o.storeFor ? o.store : o.storeFor(folder.bucket);
    checkArchitecture(
      uri,
      (await readJson<{ architectures?: string[] }>(store, `${folder.prefix}config.json`))?.architectures,
    );
    try {
      const staged = await stageModelFolder(store, uri, dir, { copy: !o.dryRun });
      o.out(`base model: ${uri} (${staged.files} files, ${(staged.bytes / 1e9).toFixed(1)} GB) -> ${dir}`);
    } catch (err) {
      if (err instanceof InputContractError)
        throw new InputContractError(`training.sft.baseModel ${err.message}`);
      throw err;
    }
    return { path: dir };
  }
  if (uri.startsWith("/")) {
    if (!existsSync(join(uri, "config.json")))
      throw new InputContractError(`training.sft.baseModel ${uri}: no config.json in that folder`);
    checkArchitecture(
      uri,
      (JSON.parse(readFileSync(join(uri, "config.json"), "utf8")) as { architectures?: string[] })
        .architectures,
    );
    return { path: uri };
  }
  return { path: uri, fetch: uri };
}

/** `huggingface_hub.snapshot_download` of a model id, before lmms-engine starts offline. */
async function fetchFromHub(o: LauncherOptions, id: string): Promise<string> {
  const script =
    "import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1]))";
  const { code, stdout } = await run(
    o.python,
    ["-c", script, id],
    { ...process.env, HF_HUB_OFFLINE: "0" },
    () => {},
    o.workdir,
  );
  if (code !== 0) throw new Error(`could not fetch ${id} from the Hugging Face Hub (exit ${code})`);
  return stdout.trim().split("\n").at(-1)!;
}

/** Runs a command, streaming its output lines to `line` (and to our own stdout), collecting stdout. */
function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  line: (l: string) => void,
  cwd: string,
  onSpawn?: (kill: () => void) => void,
): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    // In the work folder: Hydra (lmms-engine's cli) writes its outputs/<date>/ logs into the working directory.
    const child = spawn(cmd, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
    onSpawn?.(() => child.kill("SIGTERM"));
    let stdout = "";
    const read = (s: NodeJS.ReadableStream, to: NodeJS.WriteStream, keep: boolean) => {
      createInterface({ input: s }).on("line", (l) => {
        to.write(`${l}\n`);
        if (keep) stdout += `${l}\n`;
        line(l);
      });
    };
    read(child.stdout!, process.stdout, true);
    read(child.stderr!, process.stderr, false);
    child.on("error", () => resolve({ code: 127, stdout }));
    child.on("close", (c) => resolve({ code: c ?? 1, stdout }));
  });
}

/** Downloads every object under `prefix` into `dir` (images of the SFT set), skipping files already there with the same size. */
async function downloadFolder(store: ByteStore, prefix: string, dir: string): Promise<number> {
  const local = new FsStore(dir);
  const limit = pLimit(32);
  const all = await listAll(store, prefix);
  await Promise.all(
    all.map((key) =>
      limit(async () => {
        const rel = key.slice(prefix.length);
        try {
          if (statSync(join(dir, rel)).size === (await store.size(key))) return;
        } catch {
          // not there yet
        }
        await local.write(rel, await store.read(key));
      }),
    ),
  );
  return all.length;
}

export async function runLauncher(o: LauncherOptions): Promise<number> {
  const now = o.now ?? Date.now;
  const started = now();
  try {
    const config = await loadConfig(o.store, o.runId);
    const sft = config.training.sft;
    const written = await readJson<{ files?: { lmmsEngine?: string[] } }>(
      o.store,
      keys.success(o.runId, SFT_WRITER),
    );
    if (!written) throw new InputContractError("no SFT set: write-sft-dataset has not finished");
    const parquet = written.files?.lmmsEngine ?? [];
    if (parquet.length === 0)
      throw new InputContractError(
        'the SFT set has no lmms-engine layout files: add "lmms-engine" to output.sftLayouts',
      );
    const role = nodeRole(o.env ?? process.env);
    if (role.nodes > 1) checkNodeCount(role, sft.nodes);
    const cpu = o.device === "cpu";
    if (cpu && role.nodes > 1) throw new InputContractError("a CPU run is one process on one node");
    const procs = cpu ? 1 : sft.gpusPerNode;
    const world = role.nodes * procs;
    if (world % sft.sequenceParallelSize !== 0)
      throw new InputContractError(
        `training.sft.sequenceParallelSize ${sft.sequenceParallelSize} does not divide the ${world} processes`,
      );

    // The dataset folder as write-sft-dataset laid it out: lmms-engine/*.parquet and images/.
    const datasetPrefix = keys.dataset(o.runId, "sft", "x").slice(0, -1);
    const dataDir = join(o.workdir, "data", "sft");
    const local = new FsStore(dataDir);
    const names: string[] = [];
    for (const key of parquet) {
      if (!key.startsWith(datasetPrefix))
        throw new InputContractError(`${key} is outside the SFT dataset folder`);
      const rel = key.slice(datasetPrefix.length);
      await local.write(rel, await o.store.read(key));
      names.push(rel);
    }
    const checked = await checkDataset(dataDir, names, o.dryRun ? o.rows : Number.POSITIVE_INFINITY);
    const missing: string[] = [];
    if (o.dryRun) {
      for (const im of checked.images) if (!(await o.store.exists(`${datasetPrefix}${im}`))) missing.push(im);
    } else {
      const n = await downloadFolder(o.store, `${datasetPrefix}images/`, join(dataDir, "images"));
      o.out(`images: ${n} in the SFT set's folder, ${checked.images.size} named by its ${checked.rows} rows`);
      for (const im of checked.images) if (!existsSync(join(dataDir, im))) missing.push(im);
    }
    const problems = [
      ...checked.problems,
      ...missing.slice(0, 10).map((m) => `image ${m} is not in the SFT set's folder`),
    ];
    o.out(
      `dataset: ${names.length} Parquet file(s), ${checked.rows} row(s) checked, ${checked.images.size} image(s) named`,
    );
    if (problems.length > 0 && !o.dryRun) throw new InputContractError(`the SFT set: ${problems.join("; ")}`);

    const model = await stageBaseModel(o, config, join(o.workdir, "model"));
    const outputDir = join(o.workdir, "output");
    const configPath = join(o.workdir, "lmms-engine.yaml");
    const clusterEnv = trainingEnv(o.env ?? process.env, {
      verifyPreset: config.verification.extractionPreset,
    });
    const env = lmmsEngineEnv(clusterEnv);
    const render = (modelPath: string) =>
      lmmsEngineConfig(
        sft,
        {
          datasets: names.map((n) => ({ path: join(dataDir, n), dataFolder: dataDir })),
          modelPath,
          outputDir,
        },
        { device: o.device, runName: `${o.runId}-sft` },
      );
    const command = torchrunCommand(o.python, role, procs, configPath);
    const printed = [command.slice(0, 3).join(" "), ...command.slice(3).map(shellQuote)].join(" \\\n  ");

    if (o.dryRun) {
      for (const p of problems) o.out(`problem: ${p}`);
      if (model.fetch)
        o.out(`base model: ${model.fetch} (fetched from the Hugging Face Hub before training)`);
      o.out(
        `environment: ${Object.entries(env)
          .map(([k, v]) => `${k}=${shellQuote(v)}`)
          .join(" ")}`,
      );
      o.out("torchrun command:");
      o.out(printed);
      o.out(`lmms-engine config (${configPath}):`);
      o.out(toYaml(render(model.path)).trimEnd());
      if (cpu)
        o.out(
          `cpu run changes: ${Object.entries(CPU_OVERRIDES)
            .map(([k, v]) => `${k} (${v})`)
            .join("; ")}`,
        );
      return problems.length === 0 ? EXIT_OK : EXIT_BAD_INPUT;
    }

    const modelPath = model.fetch ? await fetchFromHub(o, model.fetch) : model.path;
    mkdirSync(o.workdir, { recursive: true });
    writeFileSync(configPath, toYaml(render(modelPath)));

    const nodeRank = torchrunNodeRank(role);
    const ranks = nodeRanks(nodeRank, procs);
    const settleMs = o.settleMs ?? 60_000;
    const sync = new CheckpointSync({
      store: o.store,
      prefix: checkpointsPrefix(o.runId),
      localDir: outputDir,
      layout: {
        localName: (step) => `checkpoint-${step}`,
        stepOf: checkpointStep,
        settled: (dir) => lmmsCheckpoint.settled(dir, ranks, world, settleMs, now()),
      },
      role,
      keep: sft.saveTotalLimit,
      joinTimeoutMs: o.joinTimeoutMs ?? 20 * 60_000,
      pollMs: o.pollMs ?? 5_000,
      log: o.out,
    });
    const resumed = await sync.restoreNewest((rel) => lmmsCheckpoint.wanted(rel, ranks));
    if (resumed !== null) {
      const names = readdirSync(join(outputDir, `checkpoint-${resumed}`), { recursive: true }).map(String);
      checkResumeWorldSize(resumed, lmmsCheckpoint.worldSize(names), world);
    }
    o.out(resumed === null ? `starting from ${sft.baseModel}` : `resuming from checkpoint ${resumed}`);

    // Progress kept across attempts (main node): earlier attempts' wall time, the loss of every step up to the resumed one.
    const previous = role.isMain ? await readJson<TrainLog>(o.store, trainLogKey(o.runId)) : null;
    const log: TrainLog = {
      attempts: [
        ...(previous?.attempts ?? []),
        { startedAt: new Date(started).toISOString(), seconds: 0, fromStep: resumed ?? 0 },
      ],
      metrics: (previous?.metrics ?? []).filter((m) => resumed !== null && m.step <= resumed),
    };
    const saveLog = async () => {
      if (!role.isMain) return;
      log.attempts.at(-1)!.seconds = Math.round((now() - started) / 1000);
      await writeJson(o.store, trainLogKey(o.runId), log);
    };

    let code = 0;
    let stopping = false;
    if (resumed !== null && resumed >= sft.maxSteps) {
      o.out(`checkpoint ${resumed} is the last step (maxSteps ${sft.maxSteps}): nothing left to train`);
    } else {
      o.out(printed);
      let kill = () => {};
      const onTerm = () => {
        stopping = true;
        kill();
      };
      process.once("SIGTERM", onTerm);
      const timer = setInterval(
        () => {
          sync
            .syncUp()
            .then(saveLog)
            .catch((err) => o.out(`checkpoint sync failed (will retry): ${(err as Error).message}`));
        },
        o.syncMs ?? sft.checkpointSyncMinutes * 60_000,
      );
      const r = await run(
        command[0]!,
        command.slice(1),
        { ...process.env, ...env },
        (line) => {
          const m: StepMetrics | null = parseMetricsLine(line);
          // lmms-engine logs a step's metrics before counting it: step=k is the (k+1)-th step.
          if (m) log.metrics.push({ ...m, step: m.step + 1 });
        },
        o.workdir,
        (k) => {
          kill = k;
        },
      );
      code = r.code;
      clearInterval(timer);
      process.removeListener("SIGTERM", onTerm);
    }
    const ok = code === 0 && !stopping;
    // After a kill the newest folder may be half-written: only settled ones go up then.
    await sync.syncUp(ok);
    await saveLog();
    if (!ok) {
      o.out(`lmms-engine exited with ${code}; checkpoints are in S3, a retry resumes from the newest`);
      return EXIT_TRANSIENT;
    }
    if (!role.isMain) return EXIT_OK;

    const finalStep = await sync.newestComplete();
    if (finalStep === null || finalStep < sft.maxSteps)
      throw new Error(
        `training ended but the newest complete checkpoint is ${finalStep}, not step ${sft.maxSteps}`,
      );
    // Every rank's model shard, on this node, for the export.
    await sync.download(
      finalStep,
      (rel) => rel.startsWith("pytorch_model_fsdp_0/") || !lmmsCheckpoint.shardRe.test(rel),
    );
    const exportDir = join(o.workdir, "export");
    const ex = await run(
      o.python,
      [o.exportScript, join(outputDir, `checkpoint-${finalStep}`), exportDir],
      { ...process.env, ...env },
      () => {},
      o.workdir,
    );
    if (ex.code !== 0) throw new Error(`export_hf.py exited with ${ex.code}`);
    const wallSeconds = log.attempts.reduce((a, t) => a + t.seconds, 0);
    const card = modelCard({
      runId: o.runId,
      bucket: o.env?.RECIPE_BUCKET ?? process.env.RECIPE_BUCKET ?? "",
      dataCard: keys.dataset(o.runId, "sft", "README.md"),
      sft,
      device: o.device,
      lmmsEngineVersion: LMMS_ENGINE_VERSION,
      steps: finalStep,
      rows: checked.rows,
      nodes: role.nodes,
      procsPerNode: procs,
      log,
    });
    const modelPrefix = keys.modelPrefix(o.runId, "sft");
    const exported = new FsStore(exportDir);
    const files = (readdirSync(exportDir, { recursive: true }) as string[])
      .map(String)
      .filter((f) => statSync(join(exportDir, f)).isFile());
    // Weights and configs first, the model card last: config.json is what "this model exists" is read from.
    for (const f of files)
      await o.store.write(`${modelPrefix}${relative(exportDir, join(exportDir, f))}`, await exported.read(f));
    await o.store.write(`${modelPrefix}README.md`, card, { contentType: "text/markdown" });
    o.out(`model: ${files.length + 1} files to ${modelPrefix}`);
    await writeJson(
      o.store,
      keys.success(o.runId, "train-sft"),
      stageSummary("train-sft", {
        in: checked.rows,
        out: 1,
        seconds: wallSeconds,
        extra: {
          steps: finalStep,
          nodes: role.nodes,
          gpus: cpu ? 0 : role.nodes * procs,
          gpuHours: cpu ? 0 : (wallSeconds * role.nodes * procs) / 3600,
          loggedSteps: log.metrics.length,
          ...(log.metrics.length > 0 ? { finalLoss: log.metrics.at(-1)!.loss } : {}),
          ...(resumed !== null ? { resumedFrom: resumed } : {}),
        },
        checkpoints: checkpointsPrefix(o.runId),
        model: modelPrefix,
      }),
    );
    return EXIT_OK;
  } catch (err) {
    o.out(`train-sft failed: ${(err as Error).message}`);
    return err instanceof InputContractError ? EXIT_BAD_INPUT : EXIT_TRANSIENT;
  }
}

export { parseLauncherArgs } from "../../../core/train/launcher-args.ts";
