/**
 * validate-config: resolves run.json into config.json and checks it against this stack (the GPU queue
 * that holds each model, the hosts the deployed keys are bound to: core/config/deploy.ts); on any
 * problem writes failure.json listing all of them and fails, before any job starts. It reads the
 * account's Lambda concurrency and caps every Distributed Map under it (core/pipeline/concurrency.ts).
 * Then decides the run's revision: stages whose fingerprint changed since the last execution are
 * cleared to be computed again, the others are kept (core/pipeline/revision.ts).
 */
import { GetAccountSettingsCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { z } from "zod";
import { type DeployFacts, deployProblems } from "../../core/config/deploy.ts";
import type { ConfigProblem } from "../../core/config/index.ts";
import { ConfigError } from "../../core/errors.ts";
import {
  DEFAULT_INSTANCE_TYPES,
  type GpuQueue,
  type QueueSize,
  settingList,
} from "../../core/generate/queues.ts";
import { attemptOf, keys } from "../../core/layout/index.ts";
import { mapConcurrencyCap } from "../../core/pipeline/concurrency.ts";
import { applyRevision } from "../../core/pipeline/revision.ts";
import { sourceIdentity } from "../../core/pipeline/source-identity.ts";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { type ByteStore, readJson, writeJson } from "../../core/shards/byte-store.ts";
import { handler, logger, resolveSource, runStore } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string(), execution: z.string().optional() });

/**
 * A failure.json left by an earlier attempt goes to attempts/<n>/ (where run-failure also wrote it)
 * and leaves the run's folder: from here on failure.json, when there is one, is this attempt's.
 */
async function archiveFailure(store: ByteStore, runId: string, attempt: number): Promise<void> {
  const old = await readJson<{ attempt?: number }>(store, keys.failure(runId));
  if (!old || old.attempt === attempt) return;
  // Written before failures named their attempt: the latest attempt before this one.
  const archived = keys.attemptFailure(runId, old.attempt ?? Math.max(1, attempt - 1));
  if (!(await store.exists(archived))) await writeJson(store, archived, old);
  await store.delete(keys.failure(runId));
}

/** This stack, as the deploy told this function (its environment). */
function deployFacts(env = process.env): DeployFacts {
  const queues: GpuQueue[] = (["small", "large"] as QueueSize[]).flatMap((size) => {
    const queue = env[`RECIPE_GPU_QUEUE_${size.toUpperCase()}`];
    if (!queue) return [];
    const types = settingList(
      env[`RECIPE_GPU_QUEUE_${size.toUpperCase()}_TYPES`],
      DEFAULT_INSTANCE_TYPES[size],
    );
    return [{ size, queue, instanceTypes: types }];
  });
  return {
    queues: queues.length > 0 ? queues : undefined,
    keyHosts: {
      teacher: env.RECIPE_TEACHER_KEY_HOST || undefined,
      judge: env.RECIPE_JUDGE_KEY_HOST || undefined,
    },
  };
}

let lambdaClient: LambdaClient | undefined;

/** The account's Lambda concurrency not reserved by any function. */
async function unreservedConcurrency(): Promise<number> {
  lambdaClient ??= new LambdaClient({});
  const settings = await lambdaClient.send(new GetAccountSettingsCommand({}));
  const limit =
    settings.AccountLimit?.UnreservedConcurrentExecutions ?? settings.AccountLimit?.ConcurrentExecutions;
  if (limit === undefined) throw new Error("GetAccountSettings returned no AccountLimit");
  return limit;
}

export const handle = handler("validate-config", Event, async ({ runId, execution }) => {
  const store = runStore();
  const attempt = attemptOf(runId, execution);
  await archiveFailure(store, runId, attempt);
  const outcome = await validateConfig(store, runId);
  const fail = async (problems: ConfigProblem[]) => {
    const failure = {
      runId,
      attempt,
      state: "ValidateConfig",
      error: "ConfigError",
      problems,
      whatToDo:
        "Fix every problem listed, then upload run.json again: stages the fix does not touch are kept.",
    };
    await writeJson(store, keys.attemptFailure(runId, attempt), failure);
    await writeJson(store, keys.failure(runId), failure);
    return new ConfigError(problems);
  };
  if (!outcome.ok) throw await fail(outcome.problems);
  const c = outcome.config;
  const deploy = deployProblems(c, deployFacts());
  if (deploy.problems.length > 0) throw await fail(deploy.problems);
  const unreserved = await unreservedConcurrency();
  const mapMaxConcurrency = mapConcurrencyCap(unreserved, c.orchestration.mapMaxConcurrency);
  // The data the sources name, by a listing (size and ETag of every object): a changed source file
  // recomputes the stages that read it, however the run.json reads.
  const data = await sourceIdentity(c, resolveSource);
  const revision = await applyRevision(store, runId, c, attempt, data);
  logger.info("lambda concurrency", { unreserved, mapMaxConcurrency });
  logger.info("revision", {
    runId,
    attempt: revision.attempt,
    recomputed: revision.stages.filter((d) => d.action === "recompute").map((d) => d.stage),
    removed: revision.removed,
  });
  return {
    runId,
    sft: c.sources.sft.length > 0,
    rl: c.sources.rl.length > 0 && c.rl.enabled,
    train: c.training.rl.enabled,
    // More than one: the multi-node parallel job (core/train/cluster.ts).
    trainNodes: c.training.rl.nodes,
    // train-sft trains on the SFT set, so only a run with an SFT branch has it.
    trainSft: c.sources.sft.length > 0 && c.training.sft.enabled,
    trainSftNodes: c.training.sft.nodes,
    evaluate: c.evaluation.enabled,
    teacherModel: c.teacher.model,
    policyModel: c.rl.policyModel,
    teacherServing: c.teacher.serving,
    // Empty with batch serving: the generate job then points at its own vLLM server.
    teacherUrl: c.teacher.serving === "endpoint" ? (c.teacher.endpoint?.url ?? "") : "",
    // Empty: the job downloads the model from the Hub; else it copies this S3 folder to its host.
    teacherWeightsUri: c.teacher.weightsUri ?? "",
    policyWeightsUri: c.rl.policyWeightsUri ?? "",
    jobTimeoutSeconds: c.batch.jobTimeoutHours * 3600,
    // Every Map's MaxConcurrencyPath: the two that run at once stay under the account's limit.
    mapMaxConcurrency,
    // The queues whose instance types hold the teacher and the policy (core/generate/queues.ts).
    teacherQueue: deploy.queues?.teacherQueue ?? "",
    policyQueue: deploy.queues?.policyQueue ?? "",
    toleratedFailurePercentage: c.orchestration.toleratedFailurePercentage,
  };
});
