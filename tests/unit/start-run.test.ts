/**
 * start-run against a Step Functions API over HTTP (the local one, same protocol as AWS): content
 * hashes, not ETags, decide what an upload means; a failed run starts again under the next attempt name.
 */
import { SFNClient } from "@aws-sdk/client-sfn";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { attemptName, isAttemptOf } from "../../core/layout/index.ts";
import { latestExecution, startRun } from "../../lambdas/start-run/handler.ts";
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

  it("reports different content as a conflict while the run still runs, and starts or stops nothing", async () => {
    const first = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));

    const changed = await startRun(client, MACHINE, "b", KEY, '"e"', config(2));

    expect(changed.outcome).toBe("conflict");
    expect(api.executions.size).toBe(1);
    expect(api.executions.get(first.executionArn!)?.status).toBe("RUNNING");
  });

  it("starts a new revision when the same run.json is uploaded over changed source data, and not otherwise", async () => {
    const first = await startRun(client, MACHINE, "b", KEY, '"e"', config(1), "data-1");
    api.finish(first.executionArn!, { status: "SUCCEEDED" });

    const same = await startRun(client, MACHINE, "b", KEY, '"e"', config(1), "data-1");
    const changed = await startRun(client, MACHINE, "b", KEY, '"e"', config(1), "data-2");

    expect(same.outcome).toBe("already_started");
    expect(changed.outcome).toBe("data_changed");
    expect(changed.executionArn).toMatch(/:r1\.2$/);
  });

  it("finds the newest of many attempts, in a few calls", async () => {
    let seed = 0;
    for (let i = 0; i < 37; i++) {
      const r = await startRun(client, MACHINE, "b", KEY, '"e"', config(seed++));
      api.finish(r.executionArn!, { status: "SUCCEEDED" });
    }
    let calls = 0;
    const counting = {
      send: (c: never) => {
        calls++;
        return client.send(c);
      },
    } as unknown as SFNClient;

    const latest = await latestExecution(counting, MACHINE, "r1");

    expect(latest?.attempt).toBe(37);
    expect(latest?.executionArn).toMatch(/:r1\.37$/);
    expect(calls).toBeLessThanOrEqual(14);
  });

  it.each([
    ["the same run.json", "FAILED", 1, "restarted"],
    ["a changed run.json", "SUCCEEDED", 2, "revised"],
    ["a changed run.json", "FAILED", 2, "revised"],
    ["a changed run.json", "ABORTED", 2, "revised"],
  ] as const)(
    "starts %s again under the next attempt name once its last execution %s, and only once",
    async (_, status, seed, outcome) => {
      const first = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));
      api.finish(first.executionArn!, { status });

      const next = await startRun(client, MACHINE, "b", KEY, '"e"', config(seed));
      const duplicate = await startRun(client, MACHINE, "b", KEY, '"e"', config(seed));

      expect(next.outcome).toBe(outcome);
      expect(next.executionArn).toMatch(/:execution:recipe-run:r1\.2$/);
      expect(duplicate).toMatchObject({ outcome: "already_started", executionArn: next.executionArn });
      expect(api.executions.size).toBe(2);
    },
  );

  it("starts nothing for the same content after the run succeeded", async () => {
    const first = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));
    api.finish(first.executionArn!, { status: "SUCCEEDED" });

    const again = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));

    expect(again).toMatchObject({ outcome: "already_started", executionArn: first.executionArn });
  });

  it("names attempts with a '.', which no run id can hold", () => {
    expect([1, 2, 10].map((a) => attemptName("run-1_a", a))).toEqual(["run-1_a", "run-1_a.2", "run-1_a.10"]);
    expect(["run-1_a", "run-1_a.2", "run-1_a.10"].every((n) => isAttemptOf(n, "run-1_a"))).toBe(true);
    expect(["run-1", "run-1_a2", "run-1_a.x", "run-1_a-2"].some((n) => isAttemptOf(n, "run-1_a"))).toBe(
      false,
    );
  });
});

describe("recipe run --fresh", () => {
  it("forgets every attempt of its run, so the run starts again as attempt 1, and no other run's", async () => {
    const { mkdtemp } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { FsStore } = await import("../../core/shards/fs-store.ts");
    const { clearRun } = await import("../../local/runtime.ts");
    const dir = await mkdtemp(join(tmpdir(), "recipe-fresh-"));
    const first = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));
    api.finish(first.executionArn!, { status: "FAILED" });
    await startRun(client, MACHINE, "b", KEY, '"e"', config(1)); // r1.2
    await startRun(client, MACHINE, "b", "runs/r10/run.json", '"e"', config(1)); // another run
    const rt = { s3: { store: new FsStore(dir) }, sfn: api } as unknown as Parameters<typeof clearRun>[0];

    await clearRun(rt, dir, "r1");
    const again = await startRun(client, MACHINE, "b", KEY, '"e"', config(1));

    expect([...api.executions.values()].map((e) => e.name).sort()).toEqual(["r1", "r10"]);
    expect(again).toMatchObject({ outcome: "started" });
    expect(again.executionArn).toMatch(/:r1$/);
  });
});
