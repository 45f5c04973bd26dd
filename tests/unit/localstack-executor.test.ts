/**
 * The LocalStack Lambda executor's Node bootstrap (tests/localstack/executor), natively: a stand-in for
 * LocalStack's executor endpoint records what the bootstrap posts, and the test invokes it as
 * LocalStack does. It must be as strict as Lambda: the function's timeout kills the invocation
 * (Sandbox.Timedout) and the next one runs on a fresh process; errors and oversize responses come back
 * as Lambda reports them; the deployed environment reaches the handler.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const BOOTSTRAP = resolve("tests/localstack/executor/recipe_localstack_executor/bootstrap.mjs");

interface Posted {
  path: string;
  body: string;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

let child: ChildProcess | null = null;
let endpoint: Server | null = null;
afterEach(async () => {
  child?.kill("SIGKILL");
  child = null;
  await new Promise((r) => (endpoint ? endpoint.close(r) : r(null)));
  endpoint = null;
});

async function environment(handlerSource: string, timeoutS: number) {
  const code = mkdtempSync(join(tmpdir(), "recipe-executor-"));
  writeFileSync(join(code, "index.mjs"), handlerSource);
  const posted: Posted[] = [];
  const waiters: (() => void)[] = [];
  endpoint = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      posted.push({ path: req.url ?? "", body });
      res.writeHead(202).end();
      for (const w of waiters.splice(0)) w();
    });
  });
  await new Promise<void>((r) => endpoint!.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/_localstack_lambda/env1`;
  const port = await freePort();
  child = spawn(process.execPath, [BOOTSTRAP], {
    cwd: code,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH,
      LAMBDA_TASK_ROOT: code,
      _HANDLER: "index.handler",
      AWS_LAMBDA_FUNCTION_TIMEOUT: String(timeoutS),
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "256",
      AWS_LAMBDA_FUNCTION_NAME: "fn",
      LOCALSTACK_RUNTIME_ENDPOINT: base,
      LOCALSTACK_RUNTIME_ID: "env1",
      RECIPE_EXECUTOR_PORT: String(port),
      RECIPE_EXECUTOR_HOST: "127.0.0.1",
      DEPLOYED_SETTING: "from-the-function-configuration",
    },
  });
  // The environment's output, and its end: a supervisor that dies fails the test at once with it.
  let output = "";
  child.stdout!.on("data", (c) => (output += c));
  child.stderr!.on("data", (c) => (output += c));
  let exited: string | null = null;
  child.once("exit", (code, signal) => {
    exited = `the environment exited (${signal ?? code}):\n${output}`;
    for (const w of waiters.splice(0)) w();
  });
  const posting = async (match: (p: Posted) => boolean): Promise<Posted> => {
    for (;;) {
      const hit = posted.find(match);
      if (hit) return hit;
      if (exited) throw new Error(exited);
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const started = await posting((p) => /\/status\/env1\/(ready|error)$/.test(p.path));
  if (started.path.endsWith("/error")) throw new Error(`init error: ${started.body}`);
  let n = 0;
  const invoke = async (event: unknown) => {
    const id = `req-${++n}`;
    const res = await fetch(`http://127.0.0.1:${port}/invoke`, {
      method: "POST",
      body: JSON.stringify({
        "invoke-id": id,
        "invoked-function-arn": "arn:fn",
        payload: JSON.stringify(event),
      }),
    });
    expect(res.status).toBe(200);
    const answer = await posting(
      (p) => /\/invocations\/[^/]+\/(response|error)$/.test(p.path) && p.path.includes(`/${id}/`),
    );
    const logs = posted.find((p) => p.path.endsWith(`/${id}/logs`));
    return {
      kind: answer.path.endsWith("/response") ? "response" : "error",
      body: JSON.parse(answer.body),
      logs: logs ? (JSON.parse(logs.body) as { logs: string }).logs : null,
    };
  };
  return { invoke };
}

const HANDLER = `
let calls = 0;
export const handler = async (event, context) => {
  calls += 1;
  console.log("invoked with", JSON.stringify(event));
  if (event.hang) await new Promise(() => {});
  if (event.fail) throw new RangeError("out of range: " + event.fail);
  if (event.big) return "x".repeat(7 * 1024 * 1024);
  return { event, calls, setting: process.env.DEPLOYED_SETTING, remainingMs: context.getRemainingTimeInMillis() > 0 };
};`;

describe("the LocalStack executor's bootstrap", () => {
  it("answers results, errors and oversize responses as Lambda does, with the deployed environment and logs", async () => {
    const { invoke } = await environment(HANDLER, 30);

    const first = await invoke({ n: 1 });
    expect(first).toMatchObject({
      kind: "response",
      body: { event: { n: 1 }, calls: 1, setting: "from-the-function-configuration", remainingMs: true },
    });
    expect(first.logs).toContain('invoked with {"n":1}');
    expect((await invoke({ n: 2 })).body.calls).toBe(2); // warm: the same process

    expect(await invoke({ fail: 7 })).toMatchObject({
      kind: "error",
      body: { errorType: "RangeError", errorMessage: "out of range: 7" },
    });
    expect(await invoke({ big: true })).toMatchObject({
      kind: "error",
      body: { errorType: "Function.ResponseSizeTooLarge" },
    });
  });

  it("kills an invocation at the function's timeout and runs the next on a fresh process", async () => {
    const { invoke } = await environment(HANDLER, 1);

    expect((await invoke({ n: 1 })).body.calls).toBe(1);
    const timedOut = await invoke({ hang: true });
    expect(timedOut).toMatchObject({
      kind: "error",
      body: {
        errorType: "Sandbox.Timedout",
        errorMessage: expect.stringContaining("Task timed out after 1.00 seconds"),
      },
    });
    // A cold start: the handler module was loaded again.
    expect((await invoke({ n: 3 })).body.calls).toBe(1);
  });

  it("reports a handler that cannot be loaded as an init error", async () => {
    const code = "export const notTheHandler = 1;";
    await expect(environment(code, 5)).rejects.toThrow(
      /Runtime\.HandlerNotFound.*does not export a function handler/,
    );
  });
});
