/** validate-config: resolves run.json into config.json; on any problem writes failure.json listing all of them and fails. */
import { z } from "zod";
import { ConfigError } from "../../core/errors.ts";
import { keys } from "../../core/layout/index.ts";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { writeJson } from "../../core/shards/byte-store.ts";
import { handler, runStore } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string() });

export const handle = handler("validate-config", Event, async ({ runId }) => {
  const store = runStore();
  const outcome = await validateConfig(store, runId);
  if (!outcome.ok) {
    await writeJson(store, keys.failure(runId), {
      runId,
      state: "ValidateConfig",
      error: "ConfigError",
      problems: outcome.problems,
      whatToDo:
        "Fix every problem listed, then upload run.json again under a new run id (or delete this run's folder).",
    });
    throw new ConfigError(outcome.problems);
  }
  const c = outcome.config;
  return {
    runId,
    sft: c.sources.sft.length > 0,
    rl: c.sources.rl.length > 0 && c.rl.enabled,
    train: c.training.enabled,
    teacherModel: c.teacher.model,
    policyModel: c.rl.policyModel,
    teacherServing: c.teacher.serving,
    // Empty with batch serving: the generate job then points at its own vLLM server.
    teacherUrl: c.teacher.serving === "endpoint" ? (c.teacher.endpoint?.url ?? "") : "",
    jobTimeoutSeconds: c.batch.jobTimeoutHours * 3600,
    mapMaxConcurrency: c.orchestration.mapMaxConcurrency,
    toleratedFailurePercentage: c.orchestration.toleratedFailurePercentage,
  };
});
