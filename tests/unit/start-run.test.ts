/**
 * start-run against a Step Functions API over HTTP (the local one, same protocol as AWS): content
 * hashes, not ETags, decide what an upload means; a failed run starts again under the next attempt name.
 */
import { SFNClient } from "@aws-sdk/client-sfn";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { attemptName, startRun } from "../../lambdas/start-run/handler.ts";
import { EMULATOR_CREDENTIALS } from "../../local/s3-emulator.ts";
import { type SfnApi, startSfnApi } from "../../local/sfn-api.ts";

const MACHINE = "arn:aws:states:us-east-1:000000000000:stateMachine:recipe-run";
const KEY = "runs/r1/run.json";
const config = (seed: number) => new TextEncoder().encode(JSON.stringify({ runId: "r1", mixing: { seed } }));

let api: SfnApi;
let client: SFNClient;

beforeEach(async () => {
  api = await startSfnApi({ onStart: () => undefined });
  client = new SFNClient({ endpoint: api.endpoint, region: "us-east-1", credentials: EMULATOR_CREDENTIALS });
});

afterEach(async () => {
  client.destroy();
  await api.close();
});

describe("start-run", () => {
  it("starts a run once, and treats the same content under another ETag (SSE-KMS) as the same upload", async () => {
    const first = await startRun(client, MACHINE, "b", KEY, '"etag-1"', config(1));
    const again = await startRun(client, MACHINE, "b", KEY, '"etag-2-not-an-md5"', config(1));

    expect(first).toMatchObject({ outcome: "started", runId: "r1" });
    expect(first.executionArn).toMatch(/:execution:recipe-run:r1$/);
    expect(again).toMatchObject({ outcome: "already_started", executionArn: first.executionArn });
    expect(api.executions.size).toBe(1);
  });

  it("reports different content for an existing run as a conflict and starts nothing", async () => {
    await startRun(client, MACHINE, "b", KEY, '"e"', config(1));

    const changed = await startRun(client, MACHINE, "b", KEY, '"e"', config(2));

    expect(changed.outcome).toBe("conflict");
    expect(api.executions.size).toBe(1);
  });

  it("starts a failed run again under the next attempt name, and only once", async () => {
    const first = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));
    api.finish(first.executionArn!, { status: "FAILED", error: "States.TaskFailed" });

    const restarted = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));
    const duplicate = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));

    expect(restarted.outcome).toBe("restarted");
    expect(restarted.executionArn).toMatch(/:execution:recipe-run:r1\.2$/);
    expect(duplicate).toMatchObject({ outcome: "already_started", executionArn: restarted.executionArn });
    expect(api.executions.size).toBe(2);
  });

  it("starts nothing for the same content after the run succeeded", async () => {
    const first = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));
    api.finish(first.executionArn!, { status: "SUCCEEDED" });

    const again = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));

    expect(again).toMatchObject({ outcome: "already_started", executionArn: first.executionArn });
  });

  it("names attempts with a '.', which no run id can hold", () => {
    expect([1, 2, 10].map((a) => attemptName("run-1_a", a))).toEqual(["run-1_a", "run-1_a.2", "run-1_a.10"]);
  });
});
