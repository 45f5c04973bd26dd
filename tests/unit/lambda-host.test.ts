/**
 * The embedded runtime's Lambda service: functions run in their own execution environments with
 * their own environment, and hit the limits AWS enforces (timeout, memory, payload size) with the
 * error names Step Functions sees.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { LAMBDA_PAYLOAD_LIMIT, type LambdaFunction, LambdaHost } from "../../local/lambda-host.ts";

const fixture = (name: string) =>
  pathToFileURL(join(import.meta.dirname, "..", "fixtures", "lambda", name)).href;

function fn(arn: string, over: Partial<LambdaFunction> = {}): LambdaFunction {
  return {
    arn,
    step: arn,
    code: async () => fixture("handlers.mjs"),
    memoryMb: 256,
    timeoutSeconds: 30,
    env: () => ({ AWS_ACCESS_KEY_ID: `key-of-${arn}`, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "256" }),
    ...over,
  };
}

let host: LambdaHost | undefined;
afterEach(async () => {
  await host?.close();
  host = undefined;
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected the invocation to fail");
    },
    (e: Error) => ({ name: e.name, message: e.message }),
  );

describe("local Lambda host", () => {
  it("runs each function with its own environment and keeps a warm environment per function", async () => {
    host = new LambdaHost(
      new Map([
        ["a", fn("a")],
        ["b", fn("b")],
      ]),
    );
    const first = (await host.invoke("a", { kind: "echo" })) as { calls: number; key: string };
    const second = (await host.invoke("a", { kind: "echo" })) as { calls: number };
    const other = (await host.invoke("b", { kind: "echo" })) as { calls: number; key: string };
    expect(first.key).toBe("key-of-a");
    expect(other.key).toBe("key-of-b");
    // Warm reuse: the module's state persists within one function's environment, never across functions.
    expect(second.calls).toBe(2);
    expect(other.calls).toBe(1);
  });

  it("a handler's error reaches the caller under its own name", async () => {
    host = new LambdaHost(new Map([["a", fn("a")]]));
    expect(await failure(host.invoke("a", { kind: "throw" }))).toEqual({
      name: "InputContractError",
      message: "bad shard",
    });
  });

  it("a function that runs past its timeout fails with Sandbox.Timedout, and the next call starts cold", async () => {
    host = new LambdaHost(new Map([["a", fn("a", { timeoutSeconds: 2 })]]));
    await host.invoke("a", { kind: "echo" });
    const e = await failure(host.invoke("a", { kind: "sleep", ms: 60_000 }));
    expect(e.name).toBe("Sandbox.Timedout");
    expect(e.message).toContain("Task timed out after 2.00 seconds");
    // The timed-out environment was discarded: module state starts again.
    expect(((await host.invoke("a", { kind: "echo" })) as { calls: number }).calls).toBe(1);
  });

  it("a heap over the function's memory size fails with Runtime.OutOfMemory", async () => {
    host = new LambdaHost(new Map([["a", fn("a", { memoryMb: 64 })]]));
    const e = await failure(host.invoke("a", { kind: "hog" }));
    expect(e.name).toBe("Runtime.OutOfMemory");
    expect(e.message).toContain("MemorySize 64 MB");
  }, 60_000);

  it("requests and responses over 6 MB are refused as Lambda refuses them", async () => {
    host = new LambdaHost(new Map([["a", fn("a")]]));
    expect(
      (await failure(host.invoke("a", { kind: "echo", pad: "x".repeat(LAMBDA_PAYLOAD_LIMIT) }))).name,
    ).toBe("Lambda.RequestTooLarge");
    expect((await failure(host.invoke("a", { kind: "big", bytes: LAMBDA_PAYLOAD_LIMIT + 1 }))).name).toBe(
      "Function.ResponseSizeTooLarge",
    );
    // Just under the limit passes.
    expect(((await host.invoke("a", { kind: "big", bytes: 1000 })) as string).length).toBe(1000);
  });

  it("a runtime that exits and a module that cannot load are errors, not hangs", async () => {
    host = new LambdaHost(
      new Map([
        ["a", fn("a")],
        ["broken", fn("broken", { code: async () => fixture("broken.mjs") })],
      ]),
    );
    const exit = await failure(host.invoke("a", { kind: "exit" }));
    expect(exit.name).toBe("Runtime.ExitError");
    // What Step Functions reports as the cause: Lambda's error payload, as JSON.
    expect(JSON.parse(exit.message)).toEqual({
      errorType: "Runtime.ExitError",
      errorMessage: expect.stringMatching(
        /^RequestId: [0-9a-f-]{36} Error: Runtime exited with error: exit status \d+$/,
      ),
    });
    expect((await failure(host.invoke("broken", {}))).name).toBe("Runtime.ImportModuleError");
    expect((await failure(host.invoke("nope", {}))).name).toBe("Lambda.ResourceNotFoundException");
  });
});

describe("the local account's Lambda concurrency (issue 25)", () => {
  it("throttles a synchronous invoke past the account's concurrent executions with Lambda.TooManyRequestsException", async () => {
    host = new LambdaHost(new Map([["a", fn("a")]]), { accountConcurrency: 10 });

    // 11 at once: each invocation counts from the moment it is made, as Lambda counts it.
    const outcomes = await Promise.allSettled(
      Array.from({ length: 11 }, () => host!.invoke("a", { kind: "echo" })),
    );

    const throttled = outcomes.filter((o) => o.status === "rejected").map((o) => (o.reason as Error).name);
    expect(throttled).toEqual(["Lambda.TooManyRequestsException"]);
    expect(host.concurrency).toEqual({ limit: 10, peak: 10, throttles: 1 });
  });

  it("an asynchronous invoke waits for a free execution instead of failing", async () => {
    host = new LambdaHost(new Map([["a", fn("a")]]), { accountConcurrency: 2 });

    const outcomes = await Promise.allSettled(
      Array.from({ length: 5 }, () => host!.invoke("a", { kind: "echo" }, { async: true })),
    );

    expect(outcomes.every((o) => o.status === "fulfilled")).toBe(true);
    expect(host.concurrency).toEqual({ limit: 2, peak: 2, throttles: 0 });
  });
});
