/** run-failure: the Catch target of every state; writes runs/<id>/failure.json with the state, the cause and what to do. */
import { z } from "zod";
import { keys } from "../../core/layout/index.ts";
import { readJson, writeJson } from "../../core/shards/byte-store.ts";
import { handler, runStore } from "../shared/runtime.ts";

export const Event = z.object({
  runId: z.string(),
  state: z.string().default("unknown"),
  error: z.object({ Error: z.string().optional(), Cause: z.string().optional() }).default({}),
});

const ADVICE: Record<string, string> = {
  ConfigError: "Fix every problem listed and upload run.json under a new run id.",
  InputContractError:
    "A source or intermediate file breaks its contract (see cause); fix the input and rerun: finished stages are skipped.",
  TransientError:
    "Retries were exhausted on a transient error; start the run again: finished stages and shards are skipped.",
  InvariantError: "This is a bug in recipe-pipeline; please report it with this file.",
};

export const handle = handler("run-failure", Event, async ({ runId, state, error }) => {
  const store = runStore();
  const existing = await readJson<Record<string, unknown>>(store, keys.failure(runId));
  const kind = error.Error ?? "Error";
  let cause: unknown = error.Cause;
  try {
    cause = error.Cause ? JSON.parse(error.Cause) : undefined;
  } catch {
    // Cause is plain text
  }
  const failure = {
    ...(existing ?? {}),
    runId,
    state: (existing?.state as string | undefined) ?? state,
    error: kind,
    cause,
    whatToDo:
      (existing?.whatToDo as string | undefined) ??
      ADVICE[kind] ??
      "Read the cause; fix it and start the run again: finished stages are skipped.",
  };
  await writeJson(store, keys.failure(runId), failure);
  return { failure: keys.failure(runId) };
});
