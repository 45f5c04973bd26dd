/**
 * validate-config: resolves run.json into config.json; on any problem writes failure.json listing all
 * of them and fails. Then decides the run's revision: stages whose fingerprint changed since the last
 * execution are cleared to be computed again, the others are kept (core/pipeline/revision.ts).
 */
import { z } from "zod";
import { ConfigError } from "../../core/errors.ts";
import { attemptOf, keys } from "../../core/layout/index.ts";
import { applyRevision } from "../../core/pipeline/revision.ts";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { writeJson } from "../../core/shards/byte-store.ts";
import { handler, logger, runStore } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string(), execution: z.string().optional() });

export const handle = handler("validate-config", Event, async ({ runId, execution }) => {
  const store = runStore();
  // An execution starts afresh: the failure an earlier one recorded is history (run-failure keeps the
  // first failure it finds, and recipe status reports it), so it goes before anything can fail.
  await store.delete(keys.failure(runId));
  const outcome = await validateConfig(store, runId);
  if (!outcome.ok) {
    await writeJson(store, keys.failure(runId), {
      runId,
      state: "ValidateConfig",
      error: "ConfigError",
      problems: outcome.problems,
      whatToDo:
        "Fix every problem listed, then upload run.json again: stages the fix does not touch are kept.",
    });
    throw new ConfigError(outcome.problems);
  }
  const c = outcome.config;
  const revision = await applyRevision(store, runId, c, attemptOf(runId, execution));
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
