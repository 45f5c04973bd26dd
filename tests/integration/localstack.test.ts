/**
 * The integration suite against LocalStack: runs when RECIPE_TEST_TARGET=localstack and
 * LOCALSTACK_ENDPOINT (default http://localhost:4566) answers; otherwise it is skipped, saying why.
 * With LocalStack, S3 is LocalStack's (the pipeline code talks to it through the same SDK clients) and
 * the synthesized state machine runs on the embedded interpreter.
 */
import { readFileSync } from "node:fs";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { keys } from "../../core/layout/index.ts";
import { readJson } from "../../core/shards/byte-store.ts";
import { createS3Client, S3Store } from "../../core/shards/s3-store.ts";
import type { StageSummary } from "../../core/stages/stage.ts";
import { startReplayServer } from "../../local/replay-server.ts";
import { LocalRunner, synthesizeTemplate } from "../../local/runner.ts";

const endpoint = process.env.LOCALSTACK_ENDPOINT ?? "http://localhost:4566";
const wanted = process.env.RECIPE_TEST_TARGET === "localstack";

async function reachable(): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/_localstack/health`, { signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

const up = wanted && (await reachable());
if (!wanted)
  console.log(
    "[localstack] skipped: set RECIPE_TEST_TARGET=localstack (and LOCALSTACK_ENDPOINT) to run this suite against LocalStack",
  );
else if (!up)
  console.log(
    `[localstack] skipped: RECIPE_TEST_TARGET=localstack but ${endpoint}/_localstack/health does not answer`,
  );

describe.skipIf(!up)("the sample run with LocalStack's S3", () => {
  it("runs end to end with counts that add up", async () => {
    const bucket = `recipe-ls-${Date.now()}`;
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: endpoint,
      AWS_ACCESS_KEY_ID: "test",
      AWS_SECRET_ACCESS_KEY: "test",
      AWS_REGION: "us-east-1",
      RECIPE_BUCKET: bucket,
      RECIPE_SOURCE_ROOT: `s3://${bucket}/sources/`,
    });
    const client = createS3Client();
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const store = new S3Store(client, bucket);
    for (const f of ["sft-vqa.jsonl", "sft-text-math.jsonl", "rl-questions.jsonl"])
      await store.write(`sources/sample/${f}`, readFileSync(`examples/sample/${f}`));
    for (const img of readFileSync("examples/sample/sft-vqa.jsonl", "utf8").match(
      /images\/[a-z0-9-]+\.png/g,
    ) ?? []) {
      await store.write(`sources/sample/${img}`, readFileSync(`examples/sample/${img}`));
    }
    await store.write(keys.runConfig("sample"), readFileSync("examples/run.sample.json"));
    const replay = await startReplayServer();
    try {
      const runner = new LocalRunner({
        template: synthesizeTemplate(),
        store,
        childEnv: { ...process.env, RECIPE_SERVING: "endpoint", OPENAI_BASE_URL: replay.url },
      });
      const outcome = await runner.execute({ runId: "sample" });
      expect(outcome.status, outcome.cause).toBe("SUCCEEDED");
      const sft = await readJson<StageSummary>(store, keys.success("sample", "write-sft-dataset"));
      expect(sft?.out).toBeGreaterThan(0);
    } finally {
      await replay.close();
    }
  });
});
