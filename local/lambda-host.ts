/**
 * Lambda, locally: each function runs in its own execution environments (worker threads) with the
 * environment the template gives it, its role's credentials, its memory size as the heap limit and
 * its timeout, and the invocation payload limits. Environments are reused while warm and discarded
 * after a timeout or a crash, as Lambda does, so module state never leaks between functions.
 *
 * What fails here as it fails on AWS (the error names Step Functions sees):
 *  - a handler error: its own name (InputContractError, ...);
 *  - running past the function's timeout: Sandbox.Timedout;
 *  - a heap over the function's memory size: Runtime.OutOfMemory. Only the JavaScript heap is
 *    bounded locally; Lambda counts the whole process (buffers too), so this is a lower bound;
 *  - a request or response over 6 MB (synchronous invoke): Lambda.RequestTooLarge /
 *    Function.ResponseSizeTooLarge;
 *  - a synchronous invoke while the account's concurrent executions are all in use:
 *    Lambda.TooManyRequestsException (Lambda throttles, it does not queue). An asynchronous invoke
 *    (EventBridge's) waits for a free one, as Lambda's own queue retries it.
 */
import { randomUUID } from "node:crypto";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { build } from "esbuild";
import { BUNDLE_BANNER } from "../infra/constructs/stage-function.ts";
import { PROJECT_ROOT } from "../infra/root.ts";
import { chaos } from "./faults.ts";

export interface LambdaFunction {
  arn: string;
  /** Folder under lambdas/ with handler.ts. */
  step: string;
  /** The module (file URL) exporting `handle`: the function's code. */
  code: () => Promise<string>;
  memoryMb: number;
  timeoutSeconds: number;
  /** The environment of a new execution environment (read at each cold start). */
  env: () => Record<string, string>;
}

export const LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024;

let bundles: Promise<string> | undefined;

/**
 * Every handler bundled with esbuild as the stack bundles it for Lambda (ESM, node20, the same
 * banner, the judge prompt copied beside it), once per process into a temporary folder removed at
 * exit. Locally the AWS SDK is bundled in too (Lambda's runtime provides it), so the bundle runs
 * from anywhere. A bundle starts in a fraction of the time the TypeScript sources take.
 */
export function bundleHandlers(): Promise<string> {
  bundles ??= (async () => {
    removeStaleBundles();
    const outdir = mkdtempSync(join(tmpdir(), `recipe-lambdas-${process.pid}-`));
    process.once("exit", () => rmSync(outdir, { recursive: true, force: true }));
    const steps = readdirSync(join(PROJECT_ROOT, "lambdas")).filter((d) =>
      existsSync(join(PROJECT_ROOT, "lambdas", d, "handler.ts")),
    );
    await build({
      entryPoints: Object.fromEntries(steps.map((s) => [s, join(PROJECT_ROOT, "lambdas", s, "handler.ts")])),
      bundle: true,
      splitting: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outdir,
      outExtension: { ".js": ".mjs" },
      mainFields: ["module", "main"],
      banner: { js: BUNDLE_BANNER },
      logLevel: "error",
    });
    copyFileSync(join(PROJECT_ROOT, "lambdas", "shared", "judge-prompt.md"), join(outdir, "judge-prompt.md"));
    return outdir;
  })();
  return bundles;
}

/** Bundle folders of processes that are gone (killed before their exit handler ran). */
function removeStaleBundles(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(/^recipe-lambdas-(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ESRCH")
        rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

/** The bundled handler of a step, as a file URL. */
export async function bundledHandler(step: string): Promise<string> {
  return pathToFileURL(join(await bundleHandlers(), `${step}.mjs`)).href;
}

interface Environment {
  worker: Worker;
  busy: boolean;
  idleTimer?: NodeJS.Timeout;
}

function lambdaError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name });
}

/** A new account's concurrent executions, the local account's default. */
export const LOCAL_ACCOUNT_CONCURRENCY = 10;

export class LambdaHost {
  private readonly pools = new Map<string, Environment[]>();
  private closed = false;
  /** Invocations running now, across every function (the account's concurrent executions). */
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  /** What the account's limit did: the most invocations at once, and the throttled ones. */
  readonly concurrency = { limit: LOCAL_ACCOUNT_CONCURRENCY, peak: 0, throttles: 0 };

  constructor(
    private readonly functions: Map<string, LambdaFunction>,
    private readonly options: {
      idleMs?: number;
      log?: (line: string) => void;
      /** The account's concurrent executions. @default 10 (LOCAL_ACCOUNT_CONCURRENCY) */
      accountConcurrency?: number;
    } = {},
  ) {
    this.concurrency.limit = options.accountConcurrency ?? LOCAL_ACCOUNT_CONCURRENCY;
  }

  arns(): IterableIterator<string> {
    return this.functions.keys();
  }

  fn(arn: string): LambdaFunction {
    const f = this.functions.get(arn);
    if (!f) throw lambdaError("Lambda.ResourceNotFoundException", `Function not found: ${arn}`);
    return f;
  }

  /**
   * Invokes a function synchronously (RequestResponse) and returns its parsed result; with
   * `{ async: true }` (an Event invoke) it waits for a free concurrent execution instead of being
   * throttled.
   */
  async invoke(arn: string, event: unknown, options: { async?: boolean } = {}): Promise<unknown> {
    const f = this.fn(arn);
    const payload = JSON.stringify(event ?? null);
    if (Buffer.byteLength(payload) > LAMBDA_PAYLOAD_LIMIT)
      throw lambdaError(
        "Lambda.RequestTooLarge",
        `Request must be smaller than ${LAMBDA_PAYLOAD_LIMIT} bytes for the InvokeFunction operation`,
      );
    while (options.async && this.inFlight >= this.concurrency.limit)
      await new Promise<void>((r) => this.waiting.push(r));
    if (this.inFlight >= this.concurrency.limit) {
      this.concurrency.throttles++;
      throw lambdaError(
        "Lambda.TooManyRequestsException",
        `Rate Exceeded. (${f.step}: the account's ${this.concurrency.limit} concurrent executions are in use)`,
      );
    }
    this.inFlight++;
    this.concurrency.peak = Math.max(this.concurrency.peak, this.inFlight);
    try {
      return await this.invokeIn(f, payload);
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  private async invokeIn(f: LambdaFunction, payload: string): Promise<unknown> {
    // `npm run chaos` only (RECIPE_CHAOS): throttles and crashed execution environments. The
    // EventBridge trigger's start-run is left alone (EventBridge retries a throttled delivery).
    const faults = f.step === "start-run" ? null : chaos();
    if (faults?.throttle(f.step, payload)) {
      faults.land("lambda-throttle", f.step);
      throw lambdaError("Lambda.TooManyRequestsException", "Rate Exceeded.");
    }
    const crashAfter = faults?.crashAfter(f.step, payload);
    if (crashAfter !== undefined) faults!.land("lambda-crash", f.step);
    const env = await this.acquire(f);
    try {
      const result = await this.run(f, env, payload, crashAfter);
      if (Buffer.byteLength(result) > LAMBDA_PAYLOAD_LIMIT)
        throw lambdaError(
          "Function.ResponseSizeTooLarge",
          `Response payload size exceeded maximum allowed payload size (${LAMBDA_PAYLOAD_LIMIT} bytes).`,
        );
      return JSON.parse(result);
    } finally {
      this.release(f, env);
    }
  }

  private async acquire(f: LambdaFunction): Promise<Environment> {
    if (this.closed) throw lambdaError("Lambda.ServiceException", "the local Lambda service is stopped");
    const pool = this.pools.get(f.arn) ?? [];
    this.pools.set(f.arn, pool);
    const warm = pool.find((e) => !e.busy);
    if (warm) {
      clearTimeout(warm.idleTimer);
      warm.busy = true;
      return warm;
    }
    const worker = new Worker(join(PROJECT_ROOT, "local", "lambda-worker.mjs"), {
      env: f.env(),
      workerData: { handlerUrl: await f.code() },
      resourceLimits: { maxOldGenerationSizeMb: f.memoryMb },
      stdout: true,
      stderr: true,
    });
    worker.stdout.resume();
    worker.stderr.on("data", (d) => this.options.log?.(String(d).trim()));
    const env: Environment = { worker, busy: true };
    pool.push(env);
    try {
      await new Promise<void>((resolve, reject) => {
        const onMessage = (m: { init?: boolean; name?: string; message?: string }) => {
          if (m.init === undefined) return;
          worker.off("message", onMessage);
          worker.off("error", reject);
          if (m.init) resolve();
          else reject(lambdaError(m.name ?? "Runtime.Unknown", m.message ?? "init failed"));
        };
        worker.on("message", onMessage);
        worker.once("error", reject);
      });
    } catch (err) {
      this.discard(f, env);
      throw err;
    }
    return env;
  }

  private run(f: LambdaFunction, env: Environment, payload: string, crashAfter?: number): Promise<string> {
    const id = randomUUID();
    return new Promise<string>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        env.worker.off("message", onMessage);
        env.worker.off("error", onError);
        env.worker.off("exit", onExit);
      };
      const onMessage = (m: {
        id?: string;
        ok?: boolean;
        result?: string;
        name?: string;
        message?: string;
      }) => {
        if (m.id !== id) return;
        done();
        if (m.ok) resolve(m.result!);
        else reject(lambdaError(m.name ?? "Error", m.message ?? ""));
      };
      const onError = (err: Error & { code?: string }) => {
        done();
        this.discard(f, env);
        reject(
          err.code === "ERR_WORKER_OUT_OF_MEMORY"
            ? lambdaError(
                "Runtime.OutOfMemory",
                `${f.step}: the function ran out of memory (MemorySize ${f.memoryMb} MB)`,
              )
            : lambdaError("Runtime.ExitError", `${f.step}: ${err.message}`),
        );
      };
      const onExit = (code: number) => {
        done();
        this.discard(f, env);
        // As Lambda answers the invoke and Step Functions reports it: the payload's errorType is the
        // task's error, the payload itself (JSON) its cause.
        reject(
          lambdaError(
            "Runtime.ExitError",
            JSON.stringify({
              errorType: "Runtime.ExitError",
              errorMessage: `RequestId: ${id} Error: Runtime exited with error: exit status ${code}`,
            }),
          ),
        );
      };
      const timer = setTimeout(() => {
        done();
        this.discard(f, env);
        reject(
          lambdaError(
            "Sandbox.Timedout",
            `${f.step}: Task timed out after ${f.timeoutSeconds.toFixed(2)} seconds`,
          ),
        );
      }, f.timeoutSeconds * 1000);
      env.worker.on("message", onMessage);
      env.worker.once("error", onError);
      env.worker.once("exit", onExit);
      env.worker.postMessage({ id, event: payload, crashAfter });
    });
  }

  private release(f: LambdaFunction, env: Environment): void {
    const pool = this.pools.get(f.arn);
    if (!pool?.includes(env)) return;
    env.busy = false;
    env.idleTimer = setTimeout(() => this.discard(f, env), this.options.idleMs ?? 30_000);
    env.idleTimer.unref();
  }

  private discard(f: LambdaFunction, env: Environment): void {
    clearTimeout(env.idleTimer);
    const pool = this.pools.get(f.arn) ?? [];
    const i = pool.indexOf(env);
    if (i >= 0) pool.splice(i, 1);
    void env.worker.terminate();
  }

  /** Ends every execution environment. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.pools.values()].flat();
    this.pools.clear();
    for (const e of all) clearTimeout(e.idleTimer);
    await Promise.all(all.map((e) => e.worker.terminate()));
  }
}
