/**
 * Container entry of the `generate` image (after entrypoint.sh has started vLLM, or directly when the
 * teacher is a hosted endpoint). Reads the Batch container contract from the environment and exits
 * 0 (done), 3 (bad input, no retry) or 75 (transient, retried by Batch).
 */
import { keyedEndpointProblem } from "../../../core/config/deploy.ts";
import { FsStore } from "../../../core/shards/fs-store.ts";
import { createS3Client, missingRegion, S3Store } from "../../../core/shards/s3-store.ts";
import { EXIT_BAD_INPUT, runWorker, type WorkerOptions } from "./worker.ts";

function env(name: string, fallback?: string): string {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === "") {
    console.error(JSON.stringify({ level: "ERROR", message: `${name} is not set` }));
    process.exit(EXIT_BAD_INPUT);
  }
  return v;
}

const mode = env("RECIPE_MODE", "distill") as WorkerOptions["mode"];
const bucket = env("RECIPE_BUCKET");
const noRegion = bucket.startsWith("file://") ? null : missingRegion();
if (noRegion) {
  console.error(JSON.stringify({ level: "ERROR", message: noRegion }));
  process.exit(EXIT_BAD_INPUT);
}
// The deploy bound the teacher's key to one https host: validate-config refuses a run pointing a
// hosted teacher elsewhere; the job refuses again before the key could leave.
const keyHost = process.env.RECIPE_TEACHER_KEY_HOST;
if (keyHost && process.env.RECIPE_SERVING === "endpoint" && process.env.OPENAI_BASE_URL) {
  const problem = keyedEndpointProblem(
    "OPENAI_BASE_URL",
    process.env.OPENAI_BASE_URL,
    keyHost,
    "teacherEndpointHost",
  );
  if (problem) {
    console.error(JSON.stringify({ level: "ERROR", message: problem.message }));
    process.exit(EXIT_BAD_INPUT);
  }
}
const store = bucket.startsWith("file://")
  ? new FsStore(bucket.slice(7))
  : new S3Store(createS3Client(), bucket);
// Batch stops a job with SIGTERM (TerminateJob, a Spot reclaim's two-minute notice), then SIGKILL:
// in between, the requests in flight finish and reach the cache, so none of them is asked again.
let stopping = false;
process.once("SIGTERM", () => {
  stopping = true;
});
const result = await runWorker({
  stopping: () => stopping,
  store,
  runId: env("RECIPE_RUN_ID"),
  planStage: mode === "distill" ? "plan-distill" : "plan-rollouts",
  outputStage: mode === "distill" ? "distill" : "estimate-difficulty",
  mode,
  arrayIndex: Number(process.env.AWS_BATCH_JOB_ARRAY_INDEX ?? 0),
  baseURL: env("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
  apiKey: process.env.OPENAI_API_KEY ?? "none",
  model: process.env.RECIPE_MODEL || undefined,
  concurrency: process.env.RECIPE_CONCURRENCY ? Number(process.env.RECIPE_CONCURRENCY) : undefined,
  log: (message, fields) => console.log(JSON.stringify({ level: "INFO", message, ...fields })),
});
console.log(
  JSON.stringify({
    level: result.exitCode === 0 ? "INFO" : "ERROR",
    message: "generate finished",
    exitCode: result.exitCode,
    reason: result.reason,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
    ...result.counts,
  }),
);
process.exit(result.exitCode);
