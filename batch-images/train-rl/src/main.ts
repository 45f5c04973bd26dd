/** Container entry of the `train-rl` image: the launcher over the Batch container contract. */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FsStore } from "../../../core/shards/fs-store.ts";
import { createS3Client, S3Store } from "../../../core/shards/s3-store.ts";
import { EXIT_BAD_INPUT, parseLauncherArgs, runLauncher } from "./launcher.ts";

const bucket = process.env.RECIPE_BUCKET;
const runId = process.env.RECIPE_RUN_ID;
if (!bucket || !runId) {
  console.error("RECIPE_BUCKET and RECIPE_RUN_ID must be set");
  process.exit(EXIT_BAD_INPUT);
}
const args = parseLauncherArgs(process.argv.slice(2));
const here = dirname(fileURLToPath(import.meta.url));
const code = await runLauncher({
  store: bucket.startsWith("file://") ? new FsStore(bucket.slice(7)) : new S3Store(createS3Client(), bucket),
  runId,
  workdir: process.env.RECIPE_WORKDIR ?? "/workspace",
  dryRun: args.dryRun || process.env.RECIPE_TRAIN_DRY_RUN === "1",
  rows: args.rows,
  rewardPath: process.env.RECIPE_REWARD_PATH ?? join(here, "recipe_reward.py"),
  python: process.env.RECIPE_PYTHON ?? "python3",
  verlCommand: process.env.RECIPE_VERL_CMD ? process.env.RECIPE_VERL_CMD.split(" ") : undefined,
  out: (line) => console.log(line),
});
process.exit(code);
