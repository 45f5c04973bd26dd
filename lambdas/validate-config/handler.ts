/**
 * validate-config: resolves run.json into config.json; on any problem writes failure.json listing all
 * of them and fails. Then decides the run's revision: stages whose fingerprint changed since the last
 * execution are cleared to be computed again, the others are kept (core/pipeline/revision.ts).
 */
import { z } from "zod";
import { ConfigError } from "../../core/errors.ts";
import { attemptOf, keys } from "../../core/layout/index.ts";
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

export const handle = handler("validate-config", Event, async ({ runId, execution }) => {
  const store = runStore();
  const attempt = attemptOf(runId, execution);
  await archiveFailure(store, runId, attempt);
  const outcome = await validateConfig(store, runId);
  if (!outcome.ok) {
    const failure = {
      runId,
      attempt,
      state: "ValidateConfig",
      error: "ConfigError",
      problems: outcome.problems,
      whatToDo:
        "Fix every problem listed, then upload run.json again: stages the fix does not touch are kept.",
    };
    await writeJson(store, keys.attemptFailure(runId, attempt), failure);
    await writeJson(store, keys.failure(runId), failure);
    throw new ConfigError(outcome.problems);
  }
  const c = outcome.config;
  // The data the sources name, by a listing (size and ETag of every object): a changed source file
  // recomputes the stages that read it, however the run.json reads.
  const data = await sourceIdentity(c, resolveSource);
  const revision = await applyRevision(store, runId, c, attempt, data);
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
    train: c.training.enabled,
    // More than one: the multi-node parallel job (core/train/cluster.ts).
    trainNodes: c.training.nodes,
    teacherModel: c.teacher.model,
    policyModel: c.rl.policyModel,
    teacherServing: c.teacher.serving,
    // Empty with batch serving: the generate job then points at its own vLLM server.
    teacherUrl: c.teacher.serving === "endpoint" ? (c.teacher.endpoint?.url ?? "") : "",
    // Empty: the job downloads the model from the Hub; else it copies this S3 folder to its host.
    teacherWeightsUri: c.teacher.weightsUri ?? "",
    policyWeightsUri: c.rl.policyWeightsUri ?? "",
    jobTimeoutSeconds: c.batch.jobTimeoutHours * 3600,
    mapMaxConcurrency: c.orchestration.mapMaxConcurrency,
    toleratedFailurePercentage: c.orchestration.toleratedFailurePercentage,
  };
});
