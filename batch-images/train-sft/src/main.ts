/** Container entry of the `train-sft` image: the launcher over the Batch container contract (README.md). */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { jobStore } from "../../../core/shards/job-store.ts";
import { parseLauncherArgs, runLauncher } from "./launcher.ts";

const { runId, store, storeFor } = jobStore();
const args = parseLauncherArgs(process.argv.slice(2));
const here = dirname(fileURLToPath(import.meta.url));
const seconds = (name: string) => (process.env[name] ? Number(process.env[name]) * 1000 : undefined);
// RECIPE_SFT_PYTHON: a Python with lmms-engine outside the image (tests/images' CPU environment):
// the same lmms-engine, on CPU (one process, gloo).
const python = process.env.RECIPE_SFT_PYTHON;
const code = await runLauncher({
  store,
  runId,
  workdir: process.env.RECIPE_WORKDIR ?? "/workspace",
  dryRun: args.dryRun || process.env.RECIPE_TRAIN_DRY_RUN === "1",
  rows: args.rows,
  python: python ?? "python3",
  device: python ? "cpu" : "cuda",
  exportScript: process.env.RECIPE_SFT_EXPORT_PATH ?? join(here, "export_hf.py"),
  out: (line) => console.log(line),
  env: process.env,
  joinTimeoutMs: seconds("RECIPE_CLUSTER_JOIN_TIMEOUT_S") ?? 1_200_000,
  pollMs: Number(process.env.RECIPE_CLUSTER_POLL_MS ?? 5000),
  syncMs: seconds("RECIPE_SFT_SYNC_SECONDS"),
  settleMs: seconds("RECIPE_SFT_SETTLE_SECONDS"),
  storeFor,
});
process.exit(code);
