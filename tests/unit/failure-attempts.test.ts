/**
 * failure.json belongs to its attempt (issue 27, item 2): run-failure names the attempt and keeps a
 * copy under attempts/<n>/; the next attempt's first step moves an earlier one out of the way.
 */
import { describe, expect, it } from "vitest";
import { keys } from "../../core/layout/index.ts";
import { readJson } from "../../core/shards/byte-store.ts";
import { handlerEnvironment } from "../helpers/handler-env.ts";

const env = handlerEnvironment("recipe-failures");

const failed = (cause: string) => ({
  Error: "InputContractError",
  Cause: JSON.stringify({ errorMessage: cause }),
});

describe("failure.json", () => {
  it("is the latest attempt's: a later attempt's failure replaces an earlier one, both kept under attempts/", async () => {
    const { handle } = await import("../../lambdas/run-failure/handler.ts");

    await handle({
      runId: "f1",
      execution: "f1",
      state: "Distill",
      error: failed("2 of 2 shards have no result"),
    });
    await handle({
      runId: "f1",
      execution: "f1.2",
      state: "VerifyTraces",
      error: failed("the SFT set is empty"),
    });
    await handle({ runId: "f1", execution: "f1.2", state: "Report", error: failed("a later catch") });

    const current = await readJson<{ attempt: number; cause: unknown }>(env.s3.store, keys.failure("f1"));
    expect(current).toMatchObject({ attempt: 2, cause: { errorMessage: "the SFT set is empty" } });
    expect(await readJson(env.s3.store, keys.attemptFailure("f1", 1))).toMatchObject({
      attempt: 1,
      cause: { errorMessage: "2 of 2 shards have no result" },
    });
    expect(await readJson(env.s3.store, keys.attemptFailure("f1", 2))).toEqual(current);
  });

  it("leaves the run's folder when the next attempt starts, and stays under attempts/", async () => {
    const { handle: fail } = await import("../../lambdas/run-failure/handler.ts");
    const { handle: validate } = await import("../../lambdas/validate-config/handler.ts");
    await env.s3.store.write("sources/q.jsonl", `${JSON.stringify({ question: "1+1?", answer: "2" })}\n`);
    await env.s3.store.write(
      keys.runConfig("f2"),
      JSON.stringify({
        runId: "f2",
        sources: {
          sft: [{ name: "q", uri: "q.jsonl", format: "jsonl", domain: "text_math", license: "MIT" }],
        },
      }),
    );
    await fail({ runId: "f2", execution: "f2", state: "WriteSft", error: failed("the SFT set is empty") });

    await validate({ runId: "f2", execution: "f2.2" });

    expect(await env.s3.store.exists(keys.failure("f2"))).toBe(false);
    expect(await readJson(env.s3.store, keys.attemptFailure("f2", 1))).toMatchObject({ attempt: 1 });
  });
});

describe("failureOfAttempt", () => {
  it("shows a failure only for its own attempt, and an unnumbered one only for a failed execution", async () => {
    const { failureOfAttempt } = await import("../../cli/run.ts");

    expect(failureOfAttempt({ attempt: 1 }, 2, "SUCCEEDED")).toBe(false);
    expect(failureOfAttempt({ attempt: 2 }, 2, "FAILED")).toBe(true);
    expect(failureOfAttempt({ error: "x" }, 2, "SUCCEEDED")).toBe(false);
    expect(failureOfAttempt({ error: "x" }, 2, "FAILED")).toBe(true);
  });
});
