/**
 * The embedded runtime: the state machine `cdk synth` emits, run by aws-local-stepfunctions, with
 *  - Lambda tasks calling the handlers in process with the event Step Functions would deliver,
 *  - Batch `submitJob.sync` tasks running the images' entrypoint code as child processes with the
 *    container contract (array index, run id, mode), the job definition's retry strategy and exit-code
 *    rules, and a configurable parallelism,
 *  - Distributed Map ItemReader done by a local pre-pass (the interpreter reads items from its input).
 * The deployed definition is not changed; the local copy is transformed in memory only.
 */
import "./polyfills.ts";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { StateMachine } from "aws-local-stepfunctions";
import { readJson } from "../core/shards/byte-store.ts";
import type { S3Store } from "../core/shards/s3-store.ts";
import { settingsFrom } from "../infra/config.ts";
import { PROJECT_ROOT } from "../infra/root.ts";
import { RecipePipelineStack } from "../infra/stack.ts";
import { stateMachineDefinition, type TemplateLike } from "./definition.ts";

/** tsx's loader as a file URL, so Batch children start from any working directory. */
const TSX = import.meta.resolve("tsx");

type State = Record<string, unknown> & {
  Type: string;
  Next?: string;
  Resource?: string;
  Parameters?: Record<string, unknown>;
  States?: Record<string, State>;
  Branches?: { StartAt: string; States: Record<string, State> }[];
  ItemProcessor?: { StartAt: string; States: Record<string, State>; ProcessorConfig?: unknown };
  Choices?: { Next: string }[];
  Default?: string;
  Catch?: { Next: string }[];
};
type Definition = { StartAt: string; States: Record<string, State> };

/**
 * Synthesizes the stack (without bundling assets) and returns its template. The cloud assembly goes
 * to a temporary folder removed at once: CDK's default is a new `cdk.out*` folder in the system temp
 * folder per synthesis, never removed, which filled the disk run after run.
 */
export function synthesizeTemplate(): TemplateLike {
  const outdir = mkdtempSync(join(tmpdir(), "recipe-synth-"));
  try {
    const app = new App({
      outdir,
      context: {
        "aws:cdk:bundling-stacks": [],
        "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2": true,
      },
    });
    new RecipePipelineStack(app, "RecipePipeline", { settings: settingsFrom(app.node) });
    return app.synth().getStackByName("RecipePipeline").template as TemplateLike;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/** Lambda function ARN (local) -> the step folder under lambdas/, from the template's logical ids. */
export function functionSteps(template: TemplateLike, steps: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type !== "AWS::Lambda::Function") continue;
    const step = steps.find((s) => id.startsWith(`Step${s.replace(/-/g, "")}Fn`));
    if (step) out.set(`arn:aws:lambda:us-east-1:000000000000:function:${id}`, step);
  }
  return out;
}

/** Job definition ARN (local) -> its retry strategy and which image it runs. */
export interface LocalJobDefinition {
  image: "generate" | "train-rl";
  attempts: number;
  evaluateOnExit: { Action: string; OnExitCode?: string; OnStatusReason?: string }[];
}

export function jobDefinitions(template: TemplateLike): Map<string, LocalJobDefinition> {
  const out = new Map<string, LocalJobDefinition>();
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type !== "AWS::Batch::JobDefinition") continue;
    const retry = (r.Properties?.RetryStrategy ?? {}) as {
      Attempts?: number;
      EvaluateOnExit?: LocalJobDefinition["evaluateOnExit"];
    };
    out.set(`arn:aws:batch:us-east-1:000000000000:job-definition/${id}:1`, {
      image: id.includes("Train") ? "train-rl" : "generate",
      attempts: retry.Attempts ?? 1,
      evaluateOnExit: retry.EvaluateOnExit ?? [],
    });
  }
  return out;
}

function glob(pattern: string, value: string): boolean {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`).test(value);
}

/** The Batch retry decision for one attempt's exit (AWS Batch `evaluateOnExit` semantics). */
export function retryAction(
  def: LocalJobDefinition,
  exitCode: number | null,
  statusReason: string,
): "RETRY" | "EXIT" {
  for (const rule of def.evaluateOnExit) {
    const codeOk =
      rule.OnExitCode === undefined || (exitCode !== null && glob(rule.OnExitCode, String(exitCode)));
    const reasonOk = rule.OnStatusReason === undefined || glob(rule.OnStatusReason, statusReason);
    if (codeOk && reasonOk) return rule.Action.toUpperCase() === "EXIT" ? "EXIT" : "RETRY";
  }
  return "RETRY";
}

/**
 * The local copy of the definition: each Distributed Map with an ItemReader gets a Task in front of it
 * (under the Map's own name, so every transition still lands there) that reads the manifest the
 * ItemReader would read; the Map then iterates `$.localItems`.
 */
export function localDefinition(definition: Definition, mapConcurrency: number): Definition {
  const copy = structuredClone(definition) as Definition & { TimeoutSeconds?: number };
  // Node timers cannot hold the deployed 30-day timeout; locally the run simply has no overall timeout.
  delete copy.TimeoutSeconds;
  const visit = (states: Record<string, State>) => {
    for (const [name, s] of Object.entries({ ...states })) {
      for (const b of s.Branches ?? []) visit(b.States);
      if (s.ItemProcessor) visit(s.ItemProcessor.States);
      // Fail with an intrinsic CausePath (States.JsonToString(...)): the interpreter takes only plain
      // paths, so a Pass state evaluates the intrinsic first, as Step Functions does inside the Fail.
      if (s.Type === "Fail" && typeof s.CausePath === "string" && s.CausePath.startsWith("States.")) {
        const failName = `${name} (local)`;
        states[failName] = { ...s, CausePath: "$.localFailCause.cause" } as State;
        states[name] = {
          Type: "Pass",
          Parameters: { "cause.$": s.CausePath },
          ResultPath: "$.localFailCause",
          Next: failName,
        } as State;
        continue;
      }
      if (s.Type !== "Map" || !s.ItemReader) continue;
      const reader = s.ItemReader as { Parameters?: Record<string, unknown> };
      const mapName = `${name} (local items)`;
      const {
        ItemReader: _r,
        ResultWriter: _w,
        MaxConcurrencyPath: _m,
        ToleratedFailurePercentagePath: _t,
        ...rest
      } = s;
      states[mapName] = { ...rest, ItemsPath: "$.localItems", MaxConcurrency: mapConcurrency } as State;
      states[name] = {
        Type: "Task",
        Resource: "arn:aws:states:::local:readItems",
        Parameters: reader.Parameters ?? {},
        ResultPath: "$.localItems",
        Next: mapName,
        ...(s.Catch ? { Catch: s.Catch } : {}),
      } as State;
    }
  };
  visit(copy.States);
  return copy;
}

export interface RunnerOptions {
  template: TemplateLike;
  store: S3Store;
  /** Environment for Batch children (endpoints, credentials, teacher). */
  childEnv: NodeJS.ProcessEnv;
  /** Batch children run at once. @default 2 */
  batchParallelism?: number;
  /** Distributed Map children run at once. @default 4 */
  mapConcurrency?: number;
  /** Retry intervals are shortened locally (ms). @default 50 */
  retryIntervalMs?: number;
  log?: (line: string) => void;
  /** Test hook: runs before a Lambda step is invoked (may throw to inject faults). */
  beforeStep?: (step: string, event: unknown) => void | Promise<void>;
  /** Test hook: called with each Batch child process (to kill it mid-shard). */
  onBatchChild?: (
    child: import("node:child_process").ChildProcess,
    index: number,
    attempt: number,
    jobName: string,
  ) => void;
}

const STEPS = [
  "validate-config",
  "plan-ingest",
  "ingest-source",
  "finish-stage",
  "plan-dedup",
  "sign-questions",
  "group-candidates",
  "resolve-duplicates",
  "apply-dedup",
  "plan-generation",
  "plan-verify",
  "verify-shard",
  "select-and-mix",
  "write-sft-dataset",
  "write-rl-dataset",
  "report",
  "run-failure",
];

export class LocalRunner {
  readonly definition: Definition;
  private readonly steps: Map<string, string>;
  private readonly jobs: Map<string, LocalJobDefinition>;

  constructor(private readonly o: RunnerOptions) {
    this.definition = localDefinition(
      stateMachineDefinition(o.template) as Definition,
      o.mapConcurrency ?? 4,
    );
    this.steps = functionSteps(o.template, STEPS);
    this.jobs = jobDefinitions(o.template);
  }

  private handlers(): {
    tasks: Record<string, (input: unknown) => Promise<unknown>>;
    retries: Record<string, number>;
  } {
    const tasks: Record<string, (input: unknown) => Promise<unknown>> = {};
    const retries: Record<string, number> = {};
    const walk = (states: Record<string, State>) => {
      for (const [name, s] of Object.entries(states)) {
        for (const b of s.Branches ?? []) walk(b.States);
        if (s.ItemProcessor) walk(s.ItemProcessor.States);
        if (s.Retry) retries[name] = this.o.retryIntervalMs ?? 50;
        if (s.Type !== "Task") continue;
        const resource = String(s.Resource);
        const step = this.steps.get(resource);
        if (step) tasks[name] = (input) => this.invoke(step, input);
        else if (resource === "arn:aws:states:::batch:submitJob.sync")
          tasks[name] = (input) => this.submitJob(input as never);
        else if (resource === "arn:aws:states:::local:readItems")
          tasks[name] = (input) => this.readItems(input as never);
        else throw new Error(`the local runtime has no handler for ${name} (${resource})`);
      }
    };
    walk(this.definition.States);
    return { tasks, retries };
  }

  private async invoke(step: string, event: unknown): Promise<unknown> {
    await this.o.beforeStep?.(step, event);
    const mod = (await import(`../lambdas/${step}/handler.ts`)) as {
      handle: (e: unknown) => Promise<unknown>;
    };
    return JSON.parse(JSON.stringify((await mod.handle(event)) ?? null));
  }

  private async readItems(input: { Bucket?: string; Key: string }): Promise<unknown[]> {
    const items = await readJson<unknown[]>(this.o.store, input.Key);
    if (!items)
      throw Object.assign(new Error(`ItemReader: no object at ${input.Key}`), {
        name: "States.ItemReaderFailed",
      });
    return items;
  }

  private async submitJob(input: {
    JobName: string;
    JobDefinition: string;
    ArrayProperties?: { Size: number };
    ContainerOverrides?: { Environment?: { Name: string; Value: string }[] };
  }): Promise<{ JobId: string; Status: string }> {
    const def = this.jobs.get(input.JobDefinition);
    if (!def) throw new Error(`unknown job definition ${input.JobDefinition}`);
    const env: NodeJS.ProcessEnv = { ...this.o.childEnv };
    for (const e of input.ContainerOverrides?.Environment ?? []) env[e.Name] = e.Value;
    const size = input.ArrayProperties?.Size ?? 0;
    const indexes = size >= 2 ? Array.from({ length: size }, (_, i) => i) : [0];
    const entry = join(PROJECT_ROOT, "batch-images", def.image, "src", "main.ts");
    if (def.image === "train-rl") env.RECIPE_TRAIN_DRY_RUN = "1";
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < indexes.length) {
        const index = indexes[next++]!;
        for (let attempt = 1; ; attempt++) {
          const code = await this.child(
            entry,
            { ...env, AWS_BATCH_JOB_ARRAY_INDEX: String(index) },
            index,
            attempt,
            input.JobName,
          );
          if (code === 0) break;
          const action = retryAction(
            def,
            code,
            code === null ? "Host EC2 (local) terminated" : "Essential container in task exited",
          );
          this.o.log?.(
            `${input.JobName}[${index}] attempt ${attempt} exited ${code}: ${action === "RETRY" && attempt < def.attempts ? "retrying" : "failed"}`,
          );
          if (action === "EXIT" || attempt >= def.attempts) {
            failures.push(`child ${index} exited ${code} after ${attempt} attempt(s)`);
            break;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.batchParallelism ?? 2, indexes.length) }, worker));
    if (failures.length > 0) {
      throw Object.assign(new Error(`Batch job ${input.JobName} failed: ${failures.join("; ")}`), {
        name: "States.TaskFailed",
      });
    }
    return { JobId: `local-${input.JobName}`, Status: "SUCCEEDED" };
  }

  private child(
    entry: string,
    env: NodeJS.ProcessEnv,
    index: number,
    attempt: number,
    jobName: string,
  ): Promise<number | null> {
    return new Promise((resolve) => {
      // tsx by its own path: the working directory may be a user's data folder without node_modules.
      const p = spawn(process.execPath, ["--import", TSX, entry], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      this.o.onBatchChild?.(p, index, attempt, jobName);
      p.stdout?.on("data", () => undefined);
      p.stderr?.on("data", (d) => this.o.log?.(String(d).trim()));
      p.on("exit", (code, signal) => resolve(signal ? null : code));
    });
  }

  /** Runs one execution to completion; never throws: the outcome says how it ended. */
  async execute(
    input: unknown,
  ): Promise<{ status: "SUCCEEDED" | "FAILED"; output?: unknown; error?: string; cause?: string }> {
    const machine = new StateMachine(this.definition as never, {
      validationOptions: { checkArn: false, checkPaths: false },
    });
    const { tasks, retries } = this.handlers();
    const run = machine.run(input as never, {
      overrides: { taskResourceLocalHandlers: tasks as never, retryIntervalOverrides: retries },
    });
    try {
      return { status: "SUCCEEDED", output: await run.result };
    } catch (err) {
      const e = err as Error & { cause?: { name?: string; message?: string } };
      return { status: "FAILED", error: e.cause?.name ?? e.name, cause: e.cause?.message ?? e.message };
    }
  }
}
