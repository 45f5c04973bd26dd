/**
 * Container entry of the `evaluate` image: the launcher over the Batch container contract.
 *
 * Environment:
 *   RECIPE_BUCKET           the pipeline bucket (`file:///dir` locally: a folder stands in for S3)
 *   RECIPE_RUN_ID           the run
 *   RECIPE_EVAL_DRY_RUN=1   validate the tasks and models, print the vLLM and lmms-eval commands, exit 0
 *   RECIPE_EVAL_PYTHON      the Python with lmms-eval (default python3: the image's)
 *   RECIPE_EVAL_MODEL_URL   an OpenAI-compatible base URL serving every model under its name (base,
 *                           sft, rl): no vLLM is started (a CPU run, or an external endpoint)
 *   RECIPE_EVAL_DATASETS    local dataset folders, `<dir>/<task>/`, in place of the Hub's (tests)
 *   RECIPE_EVAL_PY_DIR      folder of the job's Python files (default: beside launcher.mjs in the
 *                           image, batch-images/evaluate/python from a checkout)
 *   RECIPE_WORKDIR          scratch (default /workspace)
 *   RECIPE_VERIFY_CMD       the verifier service (default: verify.mjs in the image, verify-entry.ts
 *                           through tsx from a checkout)
 *   RECIPE_REWARD_PATH      the Python verifier glue (default: recipe_reward.py in the image,
 *                           batch-images/train-rl/src/recipe_reward.py from a checkout)
 *   RECIPE_JUDGE_URL, RECIPE_JUDGE_API_KEY / RECIPE_JUDGE_API_KEY_SECRET_ARN, RECIPE_JUDGE_KEY_HOST
 *                           the judge, as the verify step reads them (verification.judge.endpoint wins)
 *   RECIPE_VLLM_STARTUP_SECONDS  how long vLLM may take to become healthy (default 2400)
 *   RECIPE_VLLM_PORT        vLLM's port (default 8000)
 *   RECIPE_VLLM_CMD, RECIPE_GPUS, RECIPE_GPU_MEMORY_MIB  replace `vllm` and nvidia-smi's answer (tests)
 * Exit codes: 0 done, 3 bad input, 75 transient.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { jobStore } from "../../../core/shards/job-store.ts";
import { EXIT_TRANSIENT, runEvalLauncher } from "./launcher.ts";

const { bucket, runId, store, local, storeFor } = jobStore();
const here = dirname(fileURLToPath(import.meta.url));
// The image has everything beside launcher.mjs; from a checkout (the local runtime, tests) the
// Python files, the verifier entry and the reward glue are where the repository keeps them.
const bundled = existsSync(join(here, "run_lmms_eval.py"));
const repo = join(here, "..", "..", "..");
const env = {
  ...process.env,
  RECIPE_VERIFY_CMD:
    process.env.RECIPE_VERIFY_CMD ??
    (bundled
      ? `node ${join(here, "verify.mjs")}`
      : `${process.execPath} --import tsx ${join(here, "verify-entry.ts")}`),
  RECIPE_REWARD_PATH:
    process.env.RECIPE_REWARD_PATH ??
    (bundled
      ? join(here, "recipe_reward.py")
      : join(repo, "batch-images", "train-rl", "src", "recipe_reward.py")),
};
// Spot reclaim: finished benchmarks are in S3; Batch's retry evaluates the rest.
process.once("SIGTERM", () => {
  console.error("SIGTERM: stopping; a retry evaluates what is not written yet");
  process.exit(EXIT_TRANSIENT);
});
const code = await runEvalLauncher({
  store,
  runId,
  bucket: local ? "local" : bucket,
  workdir: process.env.RECIPE_WORKDIR ?? "/workspace",
  dryRun: process.env.RECIPE_EVAL_DRY_RUN === "1",
  python: process.env.RECIPE_EVAL_PYTHON ?? "python3",
  pythonDir: process.env.RECIPE_EVAL_PY_DIR ?? (bundled ? here : join(here, "..", "python")),
  modelUrl: process.env.RECIPE_EVAL_MODEL_URL || undefined,
  datasetsDir: process.env.RECIPE_EVAL_DATASETS || undefined,
  env,
  out: (line) => console.log(line),
  storeFor,
  startupSeconds: Number(process.env.RECIPE_VLLM_STARTUP_SECONDS ?? 2400),
  port: Number(process.env.RECIPE_VLLM_PORT ?? 8000),
  vllmCommand: process.env.RECIPE_VLLM_CMD ? process.env.RECIPE_VLLM_CMD.split(" ") : undefined,
  gpus: process.env.RECIPE_GPUS
    ? {
        count: Number(process.env.RECIPE_GPUS),
        memoryMiB: process.env.RECIPE_GPU_MEMORY_MIB ? Number(process.env.RECIPE_GPU_MEMORY_MIB) : null,
      }
    : undefined,
});
process.exit(code);
