/** Container entry of the `train-rl` image: the launcher over the Batch container contract. */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { jobStore } from "../../../core/shards/job-store.ts";
import { parseLauncherArgs, runLauncher } from "./launcher.ts";

const { runId, store, storeFor } = jobStore();
const args = parseLauncherArgs(process.argv.slice(2));
const here = dirname(fileURLToPath(import.meta.url));
const code = await runLauncher({
  store,
  runId,
  workdir: process.env.RECIPE_WORKDIR ?? "/workspace",
  dryRun: args.dryRun || process.env.RECIPE_TRAIN_DRY_RUN === "1",
  rows: args.rows,
  rewardPath: process.env.RECIPE_REWARD_PATH ?? join(here, "recipe_reward.py"),
  python: process.env.RECIPE_PYTHON ?? "python3",
  verlCommand: process.env.RECIPE_VERL_CMD ? process.env.RECIPE_VERL_CMD.split(" ") : undefined,
  out: (line) => console.log(line),
  env: process.env,
  // Multi-node: how long nodes wait for each other (a node that never comes up fails the attempt,
  // exit 75, naming it) and how often they look.
  joinTimeoutMs: Number(process.env.RECIPE_CLUSTER_JOIN_TIMEOUT_S ?? 1200) * 1000,
  pollMs: Number(process.env.RECIPE_CLUSTER_POLL_MS ?? 5000),
  storeFor,
  rayCommand: process.env.RECIPE_RAY_CMD ? process.env.RECIPE_RAY_CMD.split(" ") : undefined,
  mergeCommand: process.env.RECIPE_MERGE_CMD ? process.env.RECIPE_MERGE_CMD.split(" ") : undefined,
});
process.exit(code);
