/**
 * A new account's first run on the embedded runtime (issue 25): the local account has a new
 * account's Lambda concurrency and throttles past it as Lambda does; a container gets a region only
 * from its job definition; a deployed key is bound to its host.
 */

import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { keys } from "../../core/layout/index.ts";
import { readJson } from "../../core/shards/byte-store.ts";
import type { LocalOptions } from "../../local/runtime.ts";
import { local, runSample, SAMPLE, stopRuntimeAfterEach } from "../helpers/local-run.ts";

stopRuntimeAfterEach();

type Template = Parameters<NonNullable<LocalOptions["editTemplate"]>>[0];

/** The sample with two questions a shard: many shards, so the Maps have more children than 10. */
function manyShards(edit: (c: Record<string, unknown>) => void = () => undefined): string {
  const c = JSON.parse(readFileSync(SAMPLE, "utf8"));
  c.batch = { ...c.batch, questionsPerShard: 2 };
  edit(c);
  return JSON.stringify(c);
}

/** Every Distributed Map of the definition without its MaxConcurrencyPath (the cap validate-config sets). */
function uncapped(t: Template): void {
  for (const r of Object.values(t.Resources)) {
    if (r.Type !== "AWS::StepFunctions::StateMachine") continue;
    const strip = (v: unknown): unknown =>
      typeof v === "string"
        ? v.replaceAll('"MaxConcurrencyPath":"$.config.mapMaxConcurrency",', "")
        : Array.isArray(v)
          ? v.map(strip)
          : v && typeof v === "object"
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strip(x)]))
            : v;
    r.Properties!.DefinitionString = strip(r.Properties!.DefinitionString);
  }
}

describe("a new account's Lambda concurrency of 10", () => {
  it("runs the sample with many shards under a limit of 10: never throttled, never more than 10 at once", async () => {
    const { rt, execution } = await runSample({ lambdaConcurrency: 10 }, manyShards());

    expect(execution.status, execution.cause).toBe("SUCCEEDED");
    expect(rt.runner.lambda.concurrency.throttles).toBe(0);
    expect(rt.runner.lambda.concurrency.peak).toBeLessThanOrEqual(10);
    expect(rt.runner.lambda.concurrency.peak).toBeGreaterThan(1);
    const config = await readJson<{ orchestration: { mapMaxConcurrency: number } }>(
      rt.s3.store,
      keys.resolvedConfig("sample"),
    );
    expect(config?.orchestration.mapMaxConcurrency).toBe(200);
  }, 600_000);

  it("without the Maps' cap the same run is throttled (Lambda.TooManyRequestsException)", async () => {
    const { rt } = await runSample({ lambdaConcurrency: 10, editTemplate: uncapped }, manyShards());

    expect(rt.runner.lambda.concurrency.throttles).toBeGreaterThan(0);
    expect(rt.runner.lambda.concurrency.peak).toBe(10);
  }, 600_000);
});

describe("a region in every container", () => {
  it("a job definition without AWS_REGION fails its job here as on AWS: Region is missing", async () => {
    const logs: string[] = [];
    const { execution } = await runSample({
      log: (l) => logs.push(l),
      editTemplate: (t) => {
        for (const r of Object.values(t.Resources)) {
          if (r.Type !== "AWS::Batch::JobDefinition") continue;
          const c = r.Properties!.ContainerProperties as { Environment?: { Name: string }[] } | undefined;
          if (c?.Environment)
            c.Environment = c.Environment.filter((e) => !/^AWS(_DEFAULT)?_REGION$/.test(e.Name));
        }
      },
    });

    expect(execution.status).toBe("FAILED");
    expect(logs.join("\n")).toContain("Region is missing");
    // Exit 3: not retried (a missing region fails every attempt the same way).
    expect(logs.filter((l) => /Distill-sample\[\d+\] attempt 2/.test(l))).toEqual([]);
    expect(await local.rt!.s3.store.exists(keys.success("sample", "distill"))).toBe(false);
  }, 600_000);
});

describe("keys bound to hosts", () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => server?.close(r));
    server = undefined;
  });

  it("refuses a run.json pointing the keyed teacher at another host: no request carrying the key leaves", async () => {
    // Another host, which records what reaches it.
    const authorizations: string[] = [];
    server = createServer((req, res) => {
      authorizations.push(String(req.headers.authorization ?? ""));
      res.writeHead(500).end();
    });
    await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
    process.env.I25_TEACHER_KEY = "sk-deployed-teacher-key";

    const { execution } = await runSample(
      {
        // The stack's teacher key is bound to api.example.com; locally the teacher is the recorder.
        context: {
          teacherApiKeySecretArn: "arn:aws:secretsmanager:us-east-1:000000000000:secret:teacher-AbCdEf",
          teacherEndpointHost: "api.example.com",
        },
        teacherUrl: url,
        apiKeyEnv: "I25_TEACHER_KEY",
      },
      manyShards((c) => {
        c.batch = { questionsPerShard: 16 };
        c.teacher = { ...(c.teacher as object), serving: "endpoint", endpoint: { url } };
      }),
    );
    delete process.env.I25_TEACHER_KEY;

    expect(authorizations.filter((a) => a.includes("sk-deployed-teacher-key"))).toEqual([]);
    expect(execution.status).toBe("FAILED");
    const failure = await readJson<{ state: string; problems: { path: string; message: string }[] }>(
      local.rt!.s3.store,
      keys.failure("sample"),
    );
    expect(failure?.state).toBe("ValidateConfig");
    expect(failure?.problems.map((p) => p.path)).toEqual(["$.teacher.endpoint.url"]);
    expect(failure?.problems[0]?.message).toContain("https://api.example.com");
  }, 600_000);
});
