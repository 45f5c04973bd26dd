/**
 * A new account's first run (issue 25), the pure parts: which GPU queue holds a model, the Maps'
 * share of the account's Lambda concurrency, keys bound to the hosts the deploy named, and the local
 * Batch's environment (no region unless the job definition gives one).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";
import { deployProblems } from "../../core/config/deploy.ts";
import { parseRunConfigText } from "../../core/config/index.ts";
import type { RunConfig } from "../../core/config/schema.ts";
import { type GpuQueue, planQueues, queueFor } from "../../core/generate/queues.ts";
import { CONCURRENT_MAPS, concurrencyHeadroom, mapConcurrencyCap } from "../../core/pipeline/concurrency.ts";
import { batchEnvironment } from "../../local/runner.ts";

const queues: GpuQueue[] = [
  { size: "small", queue: "arn:small", instanceTypes: ["g6e.48xlarge"] },
  { size: "large", queue: "arn:large", instanceTypes: ["p5.48xlarge"] },
];

function config(over: Record<string, unknown> = {}): RunConfig {
  const parsed = parseRunConfigText(
    JSON.stringify({
      runId: "r",
      sources: { sft: [{ name: "s", uri: "s.jsonl", format: "jsonl", domain: "text_math", license: "MIT" }] },
      ...over,
    }),
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.config;
}

describe("GPU queues", () => {
  it("sends the 235B teacher to the large queue and the 7B policy to the small one", () => {
    const plan = planQueues(
      config({
        teacher: { model: "Qwen/Qwen3-VL-235B-A22B-Instruct" },
        rl: { policyModel: "Qwen/Qwen2.5-VL-7B-Instruct" },
      }),
      queues,
    );

    expect(plan).toEqual({ teacherQueue: "arn:large", policyQueue: "arn:small", problems: [] });
  });

  it("refuses a teacher that an instance type of every queue cannot hold, naming the deploy setting", () => {
    const cheap: GpuQueue[] = [
      { size: "small", queue: "arn:small", instanceTypes: ["g6e.48xlarge"] },
      // Batch would pick p4d for its price: the queue does not hold the teacher although p5 would.
      { size: "large", queue: "arn:large", instanceTypes: ["p4d.24xlarge", "p5.48xlarge"] },
    ];

    const plan = planQueues(config({ teacher: { model: "Qwen/Qwen3-VL-235B-A22B-Instruct" } }), cheap);

    expect(plan.problems.map((p) => p.path)).toEqual(["$.teacher.model"]);
    expect(plan.problems[0]!.message).toMatch(/largeInstanceTypes is p4d.24xlarge,p5.48xlarge/);
    expect(plan.problems[0]!.message).toMatch(/-c largeInstanceTypes=p5.48xlarge/);
  });

  it("puts a hosted teacher's jobs and a model of unknown size where they belong", () => {
    expect(queueFor("my/own-model", queues)).toEqual({ queue: queues[1] });
    const hosted = planQueues(
      config({
        teacher: {
          model: "Qwen/Qwen3-VL-235B-A22B-Instruct",
          serving: "endpoint",
          endpoint: { url: "https://api.example.com/v1" },
        },
      }),
      queues,
    );
    expect(hosted.teacherQueue).toBe("arn:small");
  });
});

describe("the Maps' share of the account's Lambda concurrency", () => {
  it("keeps a new account's two concurrent Maps and a headroom under its 10", () => {
    const cap = mapConcurrencyCap(10, 200);

    expect(cap).toBe(4);
    expect(CONCURRENT_MAPS * cap + concurrencyHeadroom(10)).toBeLessThanOrEqual(10);
  });

  it("leaves a large account's run setting as it is, and never asks for 0", () => {
    expect(mapConcurrencyCap(1000, 200)).toBe(200);
    expect(mapConcurrencyCap(1000, 40)).toBe(40);
    expect(mapConcurrencyCap(2, 200)).toBe(1);
  });
});

describe("keys bound to hosts", () => {
  const keyHosts = { teacher: "api.example.com", judge: "judge.example.com" };

  it("refuses a keyed teacher or judge on another host or over http, before anything is sent", () => {
    const c = config({
      teacher: { model: "m", serving: "endpoint", endpoint: { url: "http://api.example.com/v1" } },
      verification: {
        judge: { enabled: true, model: "j", endpoint: { url: "https://evil.example.net/v1" } },
      },
    });

    const { problems } = deployProblems(c, { keyHosts });

    expect(problems.map((p) => p.path)).toEqual([
      "$.teacher.endpoint.url",
      "$.verification.judge.endpoint.url",
    ]);
    expect(problems[0]!.message).toMatch(
      /only to https:\/\/api.example.com \(deploy setting teacherEndpointHost\): http is not https/,
    );
    expect(problems[1]!.message).toMatch(/evil.example.net is another host/);
  });

  it("accepts the bound hosts over https, and any endpoint when no key is deployed", () => {
    const c = config({
      teacher: { model: "m", serving: "endpoint", endpoint: { url: "https://API.example.com/v1" } },
      verification: {
        judge: { enabled: true, model: "j", endpoint: { url: "https://judge.example.com/v1" } },
      },
    });
    expect(deployProblems(c, { keyHosts }).problems).toEqual([]);
    const elsewhere = config({
      teacher: { model: "m", serving: "endpoint", endpoint: { url: "http://127.0.0.1:9/v1" } },
    });
    expect(deployProblems(elsewhere, { keyHosts: {} }).problems).toEqual([]);
  });
});

describe("the local Batch's environment", () => {
  const role = { accessKeyId: "LOCALJob", secretAccessKey: "s" };

  it("gives a container no region unless its job definition does, as a Batch host gives none", () => {
    const local = { AWS_REGION: "us-east-1", AWS_DEFAULT_REGION: "us-east-1", AWS_ENDPOINT_URL: "http://x" };

    const without = batchEnvironment(local, { environment: { RECIPE_BUCKET: "b" } }, role);
    const withRegion = batchEnvironment(local, { environment: { AWS_REGION: "eu-west-1" } }, role);

    expect(without.AWS_REGION).toBeUndefined();
    expect(without.AWS_DEFAULT_REGION).toBeUndefined();
    expect(without.AWS_ENDPOINT_URL).toBe("http://x");
    expect(without.AWS_ACCESS_KEY_ID).toBe("LOCALJob");
    expect(withRegion.AWS_REGION).toBe("eu-west-1");
  });
});

async function cli(args: string[]) {
  let out = "";
  let err = "";
  const code = await main(["node", "recipe", ...args], { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe("recipe validate and estimate against the deploy settings", () => {
  it("refuses the published recipe on a deploy whose large queue cannot hold its teacher, naming the setting", async () => {
    const ok = await cli(["validate", "examples/openmmreasoner.run.json", "--quiet", "--remote"]);
    const cheap = await cli([
      "validate",
      "examples/openmmreasoner.run.json",
      "--quiet",
      "--remote",
      "-c",
      "largeInstanceTypes=p4d.24xlarge,p5.48xlarge",
    ]);

    expect(ok.code, ok.err).toBe(0);
    expect(cheap.code).toBe(2);
    expect(cheap.err).toContain("$.teacher.model");
    expect(cheap.err).toContain("largeInstanceTypes is p4d.24xlarge,p5.48xlarge");
    expect(cheap.err).toContain("-c largeInstanceTypes=p5.48xlarge");
  });

  it("refuses a keyed teacher sent elsewhere when the deploy binds its key to a host", async () => {
    const c = JSON.parse(readFileSync("examples/openmmreasoner.run.json", "utf8"));
    c.teacher = { ...c.teacher, serving: "endpoint", endpoint: { url: "http://elsewhere.example.net/v1" } };
    const dir = mkdtempSync(join(tmpdir(), "recipe-i25-"));
    writeFileSync(join(dir, "run.json"), JSON.stringify(c));

    const result = await cli([
      "validate",
      join(dir, "run.json"),
      "--quiet",
      "--remote",
      "-c",
      "teacherApiKeySecretArn=arn:aws:secretsmanager:us-east-1:111122223333:secret:t-AbCdEf",
      "-c",
      "teacherEndpointHost=api.example.com",
    ]);

    expect(result.code).toBe(2);
    expect(result.err).toContain("$.teacher.endpoint.url");
    expect(result.err).toContain("teacherEndpointHost");
  });

  it("prices the teacher on the large queue and the policy's rollouts on the small one", async () => {
    const result = await cli([
      "estimate",
      "examples/openmmreasoner.run.json",
      "--sft-questions",
      "1000",
      "--rl-questions",
      "1000",
      "--json",
    ]);

    const estimate = JSON.parse(result.out);
    expect(estimate.instanceType).toBe("p5.48xlarge");
    expect(estimate.rolloutInstanceType).toBe("g6e.48xlarge");
    const line = (stage: string) => estimate.lines.find((l: { stage: string }) => l.stage === stage).what;
    expect(line("distill")).toContain("on p5.48xlarge");
    expect(line("estimate-difficulty")).toContain("on g6e.48xlarge");
  });
});

describe("the published example", () => {
  it("stages the teacher's and the policy's weights in S3, so no array child downloads them through NAT", () => {
    const c = JSON.parse(readFileSync("examples/openmmreasoner.run.json", "utf8"));

    expect(c.teacher.weightsUri).toMatch(/^s3:\/\/[^/]+\/models\/.+\/$/);
    expect(c.rl.policyWeightsUri).toMatch(/^s3:\/\/[^/]+\/models\/.+\/$/);
  });
});

describe("the generate container's own checks", () => {
  const generate = (env: Record<string, string>) => {
    const { AWS_REGION: _r, AWS_DEFAULT_REGION: _d, AWS_PROFILE: _p, ...base } = process.env;
    return spawnSync(process.execPath, ["--import", "tsx", "batch-images/generate/src/main.ts"], {
      env: { ...base, RECIPE_RUN_ID: "r", RECIPE_MODE: "distill", ...env },
      encoding: "utf8",
      timeout: 60_000,
    });
  };

  it("exits 3 naming the missing region before any S3 call, instead of retrying it", () => {
    const r = generate({ RECIPE_BUCKET: "some-bucket" });

    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toContain("Region is missing");
  });

  it("exits 3 before calling a teacher on another host than the one its key is bound to", () => {
    const r = generate({
      AWS_REGION: "us-east-1",
      RECIPE_BUCKET: `file://${mkdtempSync(join(tmpdir(), "recipe-i25-"))}`,
      RECIPE_TEACHER_KEY_HOST: "api.example.com",
      RECIPE_SERVING: "endpoint",
      OPENAI_BASE_URL: "https://elsewhere.example.net/v1",
      OPENAI_API_KEY: "sk-bound",
    });

    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr).toContain("teacherEndpointHost");
  });
});

describe("verify-shard's judge", () => {
  it("refuses to send a bound key to another judge host, a second check after validate-config's", async () => {
    const { openAiJudge } = await import("../../lambdas/shared/judge.ts");
    const judge = config({
      verification: {
        judge: { enabled: true, model: "j", endpoint: { url: "https://evil.example.net/v1" } },
      },
    }).verification.judge;
    process.env.RECIPE_JUDGE_KEY_HOST = "judge.example.com";
    try {
      expect(() => openAiJudge(judge, "sk-judge")).toThrow(/judgeEndpointHost/);
      expect(
        openAiJudge({ ...judge, endpoint: { url: "https://judge.example.com/v1" } }, "sk-judge"),
      ).toBeTypeOf("function");
    } finally {
      delete process.env.RECIPE_JUDGE_KEY_HOST;
    }
  });
});
