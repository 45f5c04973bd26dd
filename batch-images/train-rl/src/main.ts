/** Container entry of the `train-rl` image: the launcher over the Batch container contract. */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FsStore } from "../../../core/shards/fs-store.ts";
import { createS3Client, missingRegion, S3Store } from "../../../core/shards/s3-store.ts";
import { EXIT_BAD_INPUT, parseLauncherArgs, runLauncher } from "./launcher.ts";

const bucket = process.env.RECIPE_BUCKET;
const runId = process.env.RECIPE_RUN_ID;
if (!bucket || !runId) {
  console.error("RECIPE_BUCKET and RECIPE_RUN_ID must be set");
  process.exit(EXIT_BAD_INPUT);
}
const noRegion = bucket.startsWith("file://") ? null : missingRegion();
if (noRegion) {
  console.error(noRegion);
  process.exit(EXIT_BAD_INPUT);
}
const args = parseLauncherArgs(process.argv.slice(2));
const here = dirname(fileURLToPath(import.meta.url));
// file:// (tests, local development): a folder stands in for S3, for the pipeline bucket and any other.
const store = bucket.startsWith("file://")
  ? new FsStore(bucket.slice(7))
  : new S3Store(createS3Client(), bucket);
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
  storeFor: (other) => (store instanceof FsStore ? store : new S3Store(createS3Client(), other)),
  rayCommand: process.env.RECIPE_RAY_CMD ? process.env.RECIPE_RAY_CMD.split(" ") : undefined,
  mergeCommand: process.env.RECIPE_MERGE_CMD ? process.env.RECIPE_MERGE_CMD.split(" ") : undefined,
});
process.exit(code);
