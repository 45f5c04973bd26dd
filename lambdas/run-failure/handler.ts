/**
 * run-failure: the Catch target of every state; writes runs/<id>/failure.json with the attempt, the
 * state, the cause and what to do, and keeps a copy under runs/<id>/attempts/<n>/ (validate-config
 * clears failure.json when the next attempt starts, so it always speaks of the latest one).
 */
import { z } from "zod";
import { attemptOf, keys } from "../../core/layout/index.ts";
import { readJson, writeJson } from "../../core/shards/byte-store.ts";
import { handler, runStore } from "../shared/runtime.ts";

export const Event = z.object({
  runId: z.string(),
  /** The execution's name: which attempt failed. */
  execution: z.string().optional(),
  state: z.string().default("unknown"),
  error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).default({}),
});

const ADVICE: Record<string, string> = {
  ConfigError:
    "Fix every problem listed and upload run.json again: it starts a new revision of the run, and stages the fix does not touch are kept.",
  InputContractError:
    "A source or intermediate file breaks its contract (see cause); fix it and start the run again: finished stages are skipped, and a source file whose content changed is read again with what follows from it.",
  TransientError:
    "Retries were exhausted on a transient error; start the run again: finished stages and shards are skipped.",
  InvariantError: "This is a bug in recipe-pipeline; please report it with this file.",
  "States.TaskFailed":
    "A GPU job failed after its retries: read its log in the Batch job log group (the cause names the job). Finished responses are cached and finished shards skipped, so starting the run again resumes.",
  "States.Timeout":
    "A state ran past its timeout; start the run again: finished stages and shards are skipped.",
};

export const handle = handler("run-failure", Event, async ({ runId, execution, state, error }) => {
  const store = runStore();
  const attempt = attemptOf(runId, execution);
  const existing = await readJson<Record<string, unknown>>(store, keys.failure(runId));
  // The first failure of this attempt wins (validate-config writes its own, with every problem
  // listed); one of an earlier attempt is history, kept under attempts/.
  if (existing?.error && existing.attempt === attempt) return { failure: keys.failure(runId) };
  let kind = error.Error ?? "Error";
  let failedState = state;
  let cause: unknown = error.Cause;
  try {
    cause = error.Cause ? JSON.parse(error.Cause) : undefined;
  } catch {
    // Cause is plain text
  }
  // A failure inside a Parallel branch arrives wrapped as {state, error: {Error, Cause}}.
  const wrapped = cause as { state?: string; error?: { Error?: string; Cause?: string } } | undefined;
  if (wrapped && typeof wrapped === "object" && wrapped.state && wrapped.error) {
    failedState = wrapped.state;
    kind = wrapped.error.Error ?? kind;
    try {
      cause = wrapped.error.Cause ? JSON.parse(wrapped.error.Cause) : undefined;
    } catch {
      cause = wrapped.error.Cause;
    }
  }
  const failure = {
    runId,
    attempt,
    ...(execution ? { execution } : {}),
    state: failedState,
    error: kind,
    cause,
    whatToDo: ADVICE[kind] ?? "Read the cause; fix it and start the run again: finished stages are skipped.",
  };
  await writeJson(store, keys.attemptFailure(runId, attempt), failure);
  await writeJson(store, keys.failure(runId), failure);
  return { failure: keys.failure(runId) };
});
