/**
 * The stack on LocalStack: `cdklocal deploy` of the same stack `cdk synth` emits, a run started by
 * uploading run.json (S3 -> EventBridge -> start-run -> Step Functions), run by LocalStack's Step
 * Functions with the deployed Lambdas (run as Node.js processes by tests/localstack/executor), and
 * its datasets read back from LocalStack's S3 and compared with the same run on the embedded runtime.
 *
 * Started by `npm run test:localstack` (tests/localstack/run.sh), which installs and starts LocalStack
 * and sets RECIPE_TEST_TARGET=localstack and LOCALSTACK_ENDPOINT; skipped otherwise, saying why.
 *
 * LocalStack community has no Batch, so the run is one that needs no GPU step: an SFT set from a
 * traces source (records that carry their own responses, like the recipe's MMR1 and MiroMind-M1) and
 * an RL set from a source that carries its own pass rates (like ViRL39K, `rl.passRateFrom: "source"`);
 * the state machine skips the distill and rollout jobs when their plans have nothing to generate. Failure and
 * tolerance semantics of Distributed Maps stay tested on the embedded interpreter: LocalStack's Map
 * does not implement them (see ../shared/localstack/README.md).
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import { CreateSubnetCommand, CreateTagsCommand, CreateVpcCommand, EC2Client } from "@aws-sdk/client-ec2";
import { PutBucketNotificationConfigurationCommand } from "@aws-sdk/client-s3";
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient } from "@aws-sdk/client-sfn";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys, STAGES } from "../../core/layout/index.ts";
import { readJson } from "../../core/shards/byte-store.ts";
import { createS3Client, S3Store } from "../../core/shards/s3-store.ts";
import type { StageSummary } from "../../core/stages/stage.ts";
import { executionArnFor, startLocalRuntime } from "../../local/runtime.ts";

const run = promisify(execFile);
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
    "[localstack] skipped: run `npm run test:localstack` (it starts LocalStack and runs this suite)",
  );
else if (!up)
  console.log(
    `[localstack] skipped: RECIPE_TEST_TARGET=localstack but ${endpoint}/_localstack/health does not answer`,
  );

const ACCOUNT = "000000000000";
const REGION = "us-east-1";
const AWS_ENV = {
  AWS_ENDPOINT_URL: endpoint,
  AWS_ENDPOINT_URL_S3: endpoint,
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
  AWS_REGION: REGION,
  AWS_DEFAULT_REGION: REGION,
};
const state = resolve(process.env.LOCALSTACK_STATE ?? ".recipe/localstack");

/** Traces that carry their own responses: most correct, some wrong, some exact duplicates. */
function tracesSource(): string {
  const rows: unknown[] = [];
  for (let i = 0; i < 40; i++) {
    const a = 100 + 7 * i;
    const b = 3 + (i % 9);
    const right = String(a * b);
    const said = i % 5 === 4 ? String(a * b + 1) : right;
    rows.push({
      question: `A crate holds ${b} boxes of ${a} screws each. How many screws are in the crate?`,
      answer: right,
      response: `<think>Each of the ${b} boxes holds ${a} screws, so multiply ${a} by ${b}.</think><answer>${said}</answer>`,
    });
  }
  rows.push(rows[0], rows[1]);
  return `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
}

/** RL questions that carry a pass rate (like ViRL39K's PassRate columns): no rollouts needed. */
function ratedSource(): string {
  const rows = Array.from({ length: 24 }, (_, i) => ({
    problem: `A train travels ${40 + i} km each hour for ${2 + (i % 5)} hours. How far does it go, in km?`,
    answer: String((40 + i) * (2 + (i % 5))),
    PassRate_32BTrained: (i % 9) / 8,
  }));
  return `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
}

function runJson(runId: string, sourceUri: string, ratedUri: string): string {
  return JSON.stringify({
    runId,
    description: "GPU-free run on LocalStack: a traces source for SFT, an RL source with its own pass rates.",
    sources: {
      sft: [
        {
          name: "crate-traces",
          uri: sourceUri,
          format: "jsonl",
          kind: "traces",
          domain: "text_math",
          license: "CC0-1.0",
        },
      ],
      rl: [
        {
          name: "rated",
          uri: ratedUri,
          format: "jsonl",
          domain: "text_math",
          license: "CC0-1.0",
          columns: { question: "problem", passRate: "PassRate_32BTrained" },
        },
      ],
    },
    verification: { judge: { enabled: false } },
    mixing: { tracesPerQuestion: 2, seed: 7 },
    rl: { passRateFrom: "source" },
    batch: { questionsPerShard: 16 },
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, limitMs = 300_000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe.skipIf(!up)("the stack deployed on LocalStack", () => {
  let bucket = "";
  let stateMachineArn = "";
  let store: S3Store;
  let sfn: SFNClient;
  const contextFile = resolve("cdk.context.json");
  const hadContextFile = existsSync(contextFile);

  beforeAll(async () => {
    // AWS_ENV goes to child processes only: in this process it would also point the embedded
    // runtime's clients at LocalStack. The test's own clients name their endpoint.
    // A new VPC cannot deploy on LocalStack (its EIP placeholder breaks the NAT gateway): deploy into
    // an existing one with two private subnets, as a user with their own network would (-c vpcId).
    const ec2 = new EC2Client({ endpoint, region: REGION });
    const vpc = (await ec2.send(new CreateVpcCommand({ CidrBlock: "10.42.0.0/16" }))).Vpc!.VpcId!;
    for (const [i, az] of ["a", "b"].entries()) {
      const subnet = (
        await ec2.send(
          new CreateSubnetCommand({
            VpcId: vpc,
            CidrBlock: `10.42.${i}.0/24`,
            AvailabilityZone: `${REGION}${az}`,
          }),
        )
      ).Subnet!.SubnetId!;
      await ec2.send(
        new CreateTagsCommand({
          Resources: [subnet],
          Tags: [{ Key: "aws-cdk:subnet-type", Value: "Private" }],
        }),
      );
    }
    ec2.destroy();

    mkdirSync(state, { recursive: true });
    const env = { ...process.env, ...AWS_ENV, CDK_DEFAULT_ACCOUNT: ACCOUNT, CDK_DEFAULT_REGION: REGION };
    const cdk = (args: string[], cwd = process.cwd()) =>
      run(resolve("node_modules/.bin/cdklocal"), args, {
        cwd,
        env,
        maxBuffer: 64 << 20,
        timeout: 480_000,
      }).catch((e) => {
        throw new Error(`cdklocal ${args[0]} failed:\n${e.stdout}\n${e.stderr}`);
      });
    // Bootstrap from a folder without cdk.json: naming the environment is enough, and the app is not
    // synthesized (and its Lambdas bundled) twice.
    await cdk(["bootstrap", `aws://${ACCOUNT}/${REGION}`], state);
    const outputs = join(state, "outputs.json");
    await cdk([
      "deploy",
      "RecipePipeline",
      "--require-approval",
      "never",
      "--output",
      join(state, "cdk.out"),
      "--outputs-file",
      outputs,
      "-c",
      `vpcId=${vpc}`,
      // No Docker here: prebuilt image URIs, as `cdk deploy` on a machine without Docker takes them.
      "-c",
      "generateImageUri=public.ecr.aws/recipe-pipeline/generate:localstack",
      "-c",
      "trainImageUri=public.ecr.aws/recipe-pipeline/train-rl:localstack",
      "-c",
      "sftImageUri=public.ecr.aws/recipe-pipeline/train-sft:localstack",
      "-c",
      "evalImageUri=public.ecr.aws/recipe-pipeline/evaluate:localstack",
    ]);
    const out = JSON.parse(readFileSync(outputs, "utf8")).RecipePipeline as Record<string, string>;
    bucket = out.BucketName!;
    stateMachineArn = out.StateMachineArn!;
    const s3 = createS3Client({ endpoint });
    store = new S3Store(s3, bucket);
    sfn = new SFNClient({ endpoint, region: REGION });
    // LocalStack deploys Custom::S3BucketNotifications as a no-op, so the bucket's EventBridge switch
    // the stack sets has no effect there; the test turns it on itself (a LocalStack gap, not ours).
    await s3.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: bucket,
        NotificationConfiguration: { EventBridgeConfiguration: {} },
      }),
    );
  }, 600_000);

  afterAll(() => {
    sfn?.destroy();
    // cdklocal's VPC lookup caches its answer in cdk.context.json; that file is the user's, not ours.
    if (!hadContextFile) rmSync(contextFile, { force: true });
  });

  const executionsOf = async (runId: string) =>
    (await sfn.send(new ListExecutionsCommand({ stateMachineArn, maxResults: 100 }))).executions!.filter(
      (e) => e.name === runId || e.name?.startsWith(`${runId}.`),
    );

  const finished = (runId: string) =>
    until(`the execution of ${runId}`, async () => {
      const [e] = await executionsOf(runId);
      if (!e) return undefined;
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
      return d.status === "RUNNING" ? undefined : d;
    });

  it("deploys the synthesized stack and reads its outputs back", () => {
    expect(bucket).toMatch(/^[a-z0-9.-]+$/);
    expect(stateMachineArn).toMatch(/^arn:aws:states:us-east-1:\d{12}:stateMachine:[A-Za-z0-9-]+-run$/);
  });

  it("starts a run from an uploaded run.json and writes the same datasets as the embedded runtime", async () => {
    const runId = "ls-traces";
    const source = tracesSource();
    const rated = ratedSource();
    await store.write("sources/ls/traces.jsonl", source);
    await store.write("sources/ls/rated.jsonl", rated);
    const config = runJson(
      runId,
      `s3://${bucket}/sources/ls/traces.jsonl`,
      `s3://${bucket}/sources/ls/rated.jsonl`,
    );
    await store.write(keys.runConfig(runId), config);

    const execution = await finished(runId);
    // On failure, show why: the execution's error and cause, and failure.json.
    expect({
      status: execution.status,
      error: execution.error,
      cause: execution.cause,
      failure: await readJson(store, keys.failure(runId)),
    }).toMatchObject({ status: "SUCCEEDED" });
    expect(execution.name).toBe(runId);

    // The same run on the embedded runtime.
    const rt = await startLocalRuntime({ dataDir: join(state, "embedded") });
    try {
      await rt.s3.store.write("sources/ls/traces.jsonl", source);
      await rt.s3.store.write("sources/ls/rated.jsonl", rated);
      await rt.s3.store.write(
        keys.runConfig(runId),
        runJson(
          runId,
          `s3://${rt.s3.bucket}/sources/ls/traces.jsonl`,
          `s3://${rt.s3.bucket}/sources/ls/rated.jsonl`,
        ),
      );
      const embedded = await rt.waitFor(executionArnFor(runId));
      expect(embedded.status).toBe("SUCCEEDED");
      const counts = async (s: S3Store) => {
        const rows: Record<string, [number, number] | null> = {};
        for (const stage of STAGES) {
          const sum = await readJson<StageSummary>(s, keys.success(runId, stage));
          rows[stage] = sum ? [sum.in, sum.out] : null;
        }
        return rows;
      };
      const here = await counts(store);
      expect(here["verify-traces"]).toEqual([42, expect.any(Number)]);
      expect(here["write-sft-dataset"]?.[1]).toBeGreaterThan(0);
      expect(here).toEqual(await counts(rt.s3.store));
      const sft = async (s: S3Store) =>
        gunzipSync((await s.readBytes(keys.dataset(runId, "sft", "sft.jsonl.gz")))!).toString("utf8");
      expect(await sft(store)).toBe(await sft(rt.s3.store));
      // The RL set from the source's pass rates (no rollouts): the same Parquet bytes.
      expect(here["write-rl-dataset"]?.[1]).toBeGreaterThan(0);
      // The writer's parts, in index order, as its _SUCCESS lists them: the same files, byte for byte.
      const rlFiles = async (s: S3Store) =>
        (await readJson<{ files: { parquet: string[] } }>(s, keys.success(runId, "write-rl-dataset")))!.files
          .parquet;
      const files = await rlFiles(store);
      expect(files.length).toBeGreaterThan(0);
      expect(files).toEqual(await rlFiles(rt.s3.store));
      for (const f of files)
        expect(Buffer.compare((await store.readBytes(f))!, (await rt.s3.store.readBytes(f))!), f).toBe(0);
      expect(await store.exists(keys.dataset(runId, "sft", "README.md"))).toBe(true);
      expect(await store.exists(keys.report(runId, "report.json"))).toBe(true);
    } finally {
      await rt.stop();
    }

    // The same run.json again starts nothing: still one execution, named after the run.
    await store.write(keys.runConfig(runId), config);
    const sentinel = "ls-after-duplicate";
    await store.write(keys.runConfig(sentinel), "{ not json");
    await finished(sentinel);
    expect((await executionsOf(runId)).map((e) => e.name)).toEqual([runId]);
  }, 600_000);

  it("ends a malformed run.json at the failure handler with every problem in failure.json", async () => {
    const runId = "ls-malformed";
    await store.write(
      keys.runConfig(runId),
      JSON.stringify({
        runId,
        sources: { sft: [{ name: "Bad Name", uri: "x.jsonl" }] },
        teacher: { samplesPerQuestion: 0 },
      }),
    );
    const execution = await finished(runId);
    expect(execution.status).toBe("FAILED");
    const failure = await readJson<{ problems?: { path: string }[] }>(store, keys.failure(runId));
    expect((failure?.problems ?? []).map((p) => p.path).sort()).toEqual(
      expect.arrayContaining([
        "$.sources.sft[0].domain",
        "$.sources.sft[0].format",
        "$.sources.sft[0].license",
        "$.sources.sft[0].name",
        "$.teacher.samplesPerQuestion",
      ]),
    );
  }, 300_000);

  it("recipe status reads the execution and per-stage counts from LocalStack's Step Functions and S3", async () => {
    const status = (runId: string) =>
      run(
        process.execPath,
        ["bin/recipe.mjs", "status", runId, "--bucket", bucket, "--state-machine-arn", stateMachineArn],
        { env: { ...process.env, ...AWS_ENV } },
      ).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e) => ({ code: e.code as number, out: `${e.stdout}${e.stderr}` }),
      );
    const ok = await status("ls-traces");
    expect(ok).toMatchObject({ code: 0, out: expect.stringMatching(/^run ls-traces: SUCCEEDED/) });
    expect(ok.out).toMatch(/verify-traces\s+42\s+\d+/);
    const failed = await status("ls-malformed");
    expect(failed.code).toBe(1);
    expect(failed.out).toMatch(/^run ls-malformed: FAILED/);
    expect(failed.out).toContain("failure.json");
  }, 120_000);

  it("recomputes what reads a source object overwritten under the same key when the same run.json is uploaded", async () => {
    const runId = "ls-traces";
    const extra = {
      problem: "A train travels 99 km each hour for 3 hours. How far does it go, in km?",
      answer: "297",
      PassRate_32BTrained: 0.5,
    };
    await store.write("sources/ls/rated.jsonl", `${ratedSource()}${JSON.stringify(extra)}\n`);
    await store.write(
      keys.runConfig(runId),
      runJson(runId, `s3://${bucket}/sources/ls/traces.jsonl`, `s3://${bucket}/sources/ls/rated.jsonl`),
    );

    const execution = await until("the second attempt of ls-traces", async () => {
      const e = (await executionsOf(runId)).find((x) => x.name === `${runId}.2`);
      if (!e) return undefined;
      const d = await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn }));
      return d.status === "RUNNING" ? undefined : d;
    });
    expect(execution.status).toBe("SUCCEEDED");
    const revision = await readJson<{ stages: { stage: string; action: string; because?: string[] }[] }>(
      store,
      `runs/${runId}/revision.json`,
    );
    const of = (stage: string) => revision!.stages.find((d) => d.stage === stage);
    expect(of("ingest-rl")).toMatchObject({
      action: "recompute",
      because: [`s3://${bucket}/sources/ls/rated.jsonl changed`],
    });
    expect(of("ingest-sft")).toMatchObject({ action: "keep" });
    const ingest = await readJson<StageSummary>(store, keys.success(runId, "ingest-rl"));
    expect(ingest?.in).toBe(25);
  }, 600_000);
});
