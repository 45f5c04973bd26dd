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
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, type WriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { App } from "aws-cdk-lib";
import { StateMachine } from "aws-local-stepfunctions";
import { readJson } from "../core/shards/byte-store.ts";
import type { S3Store } from "../core/shards/s3-store.ts";
import { settingsFrom } from "../infra/config.ts";
import { PROJECT_ROOT } from "../infra/root.ts";
import { RecipePipelineStack } from "../infra/stack.ts";
import {
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  localRef,
  resolveTokens,
  stateMachineDefinition,
  type TemplateLike,
} from "./definition.ts";
import type { LocalAccount, Principal } from "./iam/account.ts";
import { s3Permissions } from "./iam/s3-requests.ts";
import { bundledHandler, type LambdaFunction, LambdaHost } from "./lambda-host.ts";

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

/** The function a Task state invokes (the stack's Lambda tasks name the function ARN as the resource). */
function lambdaTarget(s: State): string | undefined {
  const resource = String(s.Resource);
  return resource.startsWith("arn:aws:lambda:") ? resource : undefined;
}

/**
 * Synthesizes the stack (without bundling assets) and returns its template. The cloud assembly goes
 * to a temporary folder removed at once: CDK's default is a new `cdk.out*` folder in the system temp
 * folder per synthesis, never removed, which filled the disk run after run.
 */
export function synthesizeTemplate(context: Record<string, string> = {}): TemplateLike {
  const outdir = mkdtempSync(join(tmpdir(), "recipe-synth-"));
  try {
    const app = new App({
      outdir,
      context: {
        "aws:cdk:bundling-stacks": [],
        "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2": true,
        // Deploy settings (-c key=value) of the stack the local runtime stands for.
        ...context,
      },
    });
    new RecipePipelineStack(app, "RecipePipeline", { settings: settingsFrom(app.node) });
    return app.synth().getStackByName("RecipePipeline").template as TemplateLike;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

/**
 * The stack's Lambda functions as the local Lambda service runs them: ARN, the step folder under
 * lambdas/ (from the logical id), memory size, timeout, and the environment the template gives the
 * function plus what only the local runtime needs (`local`: endpoints, the replay teacher, ...) and
 * the credentials of the function's role.
 */
export function lambdaFunctions(
  template: TemplateLike,
  account: LocalAccount,
  local: () => Record<string, string>,
): Map<string, LambdaFunction> {
  const ref = localRef(template);
  const out = new Map<string, LambdaFunction>();
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type !== "AWS::Lambda::Function") continue;
    const step = STEPS.find((s) => id.startsWith(`Step${s.replace(/-/g, "")}Fn`));
    if (!step) continue;
    const p = r.Properties ?? {};
    const arn = ref(id);
    const role = account.functionPrincipal(arn);
    const declared = resolveTokens(
      (p.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {},
      ref,
    ) as Record<string, string>;
    out.set(arn, {
      arn,
      step,
      code: () => bundledHandler(step),
      memoryMb: Number(p.MemorySize ?? 128),
      timeoutSeconds: Number(p.Timeout ?? 3),
      env: () => ({
        ...declared,
        ...local(),
        AWS_REGION: LOCAL_REGION,
        AWS_LAMBDA_FUNCTION_NAME: arn.split(":").pop()!,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(p.MemorySize ?? 128),
        AWS_ACCESS_KEY_ID: role.accessKeyId,
        AWS_SECRET_ACCESS_KEY: role.secretAccessKey,
      }),
    });
  }
  return out;
}

/** Job definition ARN (local) -> its retry strategy and which image it runs. */
export interface LocalJobDefinition {
  image: JobImage;
  attempts: number;
  evaluateOnExit: { Action: string; OnExitCode?: string; OnStatusReason?: string; OnReason?: string }[];
  /** The job definition's attempt timeout (seconds), unless the submission sets one. */
  attemptSeconds?: number;
  /** A multi-node parallel job definition: its node count and whether a node range is open ("0:"). */
  multiNode?: { numNodes: number; mainNode: number; openRange: boolean };
  /** The container's environment as the job definition gives it (tokens resolved locally). */
  environment: Record<string, string>;
}

/** The image (batch-images/<image>) each job definition runs. */
export type JobImage = "generate" | "train-sft" | "train-rl" | "evaluate";

/** Which image a job definition runs, by its logical id (GpuTrainSft..., GpuTrainRl..., GpuEvaluate...). */
export function jobImage(logicalId: string): JobImage {
  if (logicalId.includes("TrainSft")) return "train-sft";
  if (logicalId.includes("Train")) return "train-rl";
  if (logicalId.includes("Evaluate")) return "evaluate";
  return "generate";
}

/** An image's entry: the Node program its container runs (batch-images/<image>/src/main.ts). */
export function jobEntry(image: JobImage): string {
  return join(PROJECT_ROOT, "batch-images", image, "src", "main.ts");
}

/** Why an image's entry cannot run here (null: it can): a checkout without the image's folder. */
export function entryProblem(image: JobImage): string | null {
  const entry = jobEntry(image);
  return existsSync(entry)
    ? null
    : `${relative(PROJECT_ROOT, entry)} is missing from this checkout (the ${image} image's entry)`;
}

/**
 * What the embedded runtime adds to a job's environment, having no GPU. train-rl runs verl's dry run.
 * train-sft runs its dry run (validate the SFT set, render the config, print the torchrun command)
 * unless RECIPE_SFT_PYTHON names a Python with lmms-engine (tests/images/venv.sh train-sft), which
 * then trains a tiny model on CPU. evaluate runs its dry run unless RECIPE_EVAL_PYTHON names a
 * Python with lmms-eval; it then asks RECIPE_EVAL_MODEL_URL, by default the local teacher (the
 * replay server or --teacher-url), for every model's answers. generate jobs call the local teacher.
 */
export function localJobEnv(
  image: JobImage,
  env: NodeJS.ProcessEnv,
  teacherEnv: Record<string, string> = {},
): Record<string, string> {
  switch (image) {
    case "generate":
      return teacherEnv;
    case "train-rl":
      return { RECIPE_TRAIN_DRY_RUN: "1" };
    case "train-sft":
      return env.RECIPE_SFT_PYTHON ? {} : { RECIPE_TRAIN_DRY_RUN: "1" };
    case "evaluate": {
      const url = env.RECIPE_EVAL_MODEL_URL ?? teacherEnv.OPENAI_BASE_URL;
      return env.RECIPE_EVAL_PYTHON && url ? { RECIPE_EVAL_MODEL_URL: url } : { RECIPE_EVAL_DRY_RUN: "1" };
    }
  }
}

export function jobDefinitions(template: TemplateLike): Map<string, LocalJobDefinition> {
  const ref = localRef(template);
  const out = new Map<string, LocalJobDefinition>();
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type !== "AWS::Batch::JobDefinition") continue;
    const retry = (r.Properties?.RetryStrategy ?? {}) as {
      Attempts?: number;
      EvaluateOnExit?: LocalJobDefinition["evaluateOnExit"];
    };
    const timeout = r.Properties?.Timeout as { AttemptDurationSeconds?: number } | undefined;
    type Env = { Environment?: { Name: string; Value: unknown }[] };
    const nodes = r.Properties?.NodeProperties as
      | {
          NumNodes: number;
          MainNode: number;
          NodeRangeProperties: { TargetNodes: string; Container?: Env }[];
        }
      | undefined;
    const container =
      (r.Properties?.ContainerProperties as Env | undefined) ?? nodes?.NodeRangeProperties[0]?.Container;
    const environment = Object.fromEntries(
      (container?.Environment ?? []).map((e) => [e.Name, String(resolveTokens(e.Value, ref))]),
    );
    out.set(ref(id), {
      ...(r.Properties?.Type === "multinode" && nodes
        ? {
            multiNode: {
              numNodes: nodes.NumNodes,
              mainNode: nodes.MainNode,
              openRange: nodes.NodeRangeProperties.some((n) => n.TargetNodes.endsWith(":")),
            },
          }
        : {}),
      attemptSeconds: timeout?.AttemptDurationSeconds,
      environment,
      image: jobImage(id),
      attempts: retry.Attempts ?? 1,
      evaluateOnExit: retry.EvaluateOnExit ?? [],
    });
  }
  return out;
}

/** A job name as a file or folder name (job names are letters, digits, hyphens and underscores). */
function fileName(jobName: string): string {
  return jobName.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/** A job's scratch folder under the runtime's (RECIPE_WORKDIR): one per job, per array child. */
export function jobWorkdir(root: string, jobName: string, arrayIndex?: number): string {
  return join(root, fileName(jobName), ...(arrayIndex === undefined ? [] : [String(arrayIndex)]));
}

/**
 * A container attempt's start, locally. Its scratch disk (RECIPE_WORKDIR) is empty, as a new
 * container's is on AWS: neither a killed attempt's leftovers nor an earlier run's are there. Its
 * output log (`<logDir>/<job name>/<index>.log`, appended, CloudWatch Logs' stream on AWS) is opened
 * under a line naming the attempt; the caller writes stdout and stderr to it and ends it.
 */
export function startContainer(
  env: NodeJS.ProcessEnv,
  logDir: string | undefined,
  jobName: string,
  index: number,
  attempt: number,
): WriteStream | undefined {
  if (env.RECIPE_WORKDIR) {
    rmSync(env.RECIPE_WORKDIR, { recursive: true, force: true });
    mkdirSync(env.RECIPE_WORKDIR, { recursive: true });
  }
  if (!logDir) return undefined;
  const dir = join(logDir, fileName(jobName));
  mkdirSync(dir, { recursive: true });
  const output = createWriteStream(join(dir, `${index}.log`), { flags: "a" });
  output.write(`=== ${jobName} [${index}] attempt ${attempt} started ${new Date().toISOString()}\n`);
  return output;
}

function glob(pattern: string, value: string): boolean {
  return new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`).test(value);
}

/**
 * The Batch retry decision for one attempt's exit (AWS Batch `evaluateOnExit` semantics): the first
 * rule whose every given condition (exit code, status reason, reason) matches decides; an exit no rule
 * matches is retried. `reason` is the container's reason (e.g. CannotPullContainerError: ...), empty
 * for a container that ran.
 */
export function retryAction(
  def: LocalJobDefinition,
  exitCode: number | null,
  statusReason: string,
  reason = "",
): "RETRY" | "EXIT" {
  for (const rule of def.evaluateOnExit) {
    const codeOk =
      rule.OnExitCode === undefined || (exitCode !== null && glob(rule.OnExitCode, String(exitCode)));
    const statusOk = rule.OnStatusReason === undefined || glob(rule.OnStatusReason, statusReason);
    const reasonOk = rule.OnReason === undefined || glob(rule.OnReason, reason);
    if (codeOk && statusOk && reasonOk) return rule.Action.toUpperCase() === "EXIT" ? "EXIT" : "RETRY";
  }
  return "RETRY";
}

/**
 * A local container's environment: the local endpoints and settings, then the job definition's own
 * environment, then the job role's credentials. No region unless the job definition gives one: a
 * Batch container gets none from the host (the JS SDK reads none from instance metadata), so a job
 * definition without AWS_REGION fails here as it fails on AWS.
 */
export function batchEnvironment(
  childEnv: NodeJS.ProcessEnv,
  def: Pick<LocalJobDefinition, "environment">,
  role: { accessKeyId: string; secretAccessKey: string },
): NodeJS.ProcessEnv {
  const { AWS_REGION: _r, AWS_DEFAULT_REGION: _d, AWS_PROFILE: _p, ...local } = childEnv;
  return {
    ...local,
    // A container has no ~/.aws of the user's either.
    AWS_CONFIG_FILE: join(tmpdir(), "recipe-no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(tmpdir(), "recipe-no-aws-credentials"),
    ...def.environment,
    AWS_ACCESS_KEY_ID: role.accessKeyId,
    AWS_SECRET_ACCESS_KEY: role.secretAccessKey,
  };
}

/** Batch's decision after a container exits: killed with its host (a reclaim, null) or exited. */
function afterExit(def: LocalJobDefinition, code: number | null): "RETRY" | "EXIT" {
  return retryAction(
    def,
    code,
    code === null ? "Host EC2 (local) terminated" : "Essential container in task exited",
  );
}

/**
 * The local copy of the definition: each Distributed Map with an ItemReader gets a Task in front of it
 * (under the Map's own name, so every transition still lands there) that reads the manifest the
 * ItemReader would read; the Map then iterates `$.localItems`.
 */
export function localDefinition(definition: Definition, mapConcurrency?: number): Definition {
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
      const writer = s.ResultWriter as { Parameters?: Record<string, unknown> } | undefined;
      const mapName = `${name} (local items)`;
      const { ItemReader: _r, ResultWriter: _w, ToleratedFailurePercentagePath: _t, ...rest } = s;
      // The deployed MaxConcurrencyPath (validate-config's cap under the account's Lambda
      // concurrency) applies here as on AWS, unless a fixed concurrency is asked for.
      if (mapConcurrency !== undefined) {
        delete rest.MaxConcurrencyPath;
        rest.MaxConcurrency = mapConcurrency;
      }
      states[mapName] = { ...rest, ItemsPath: "$.localItems" } as State;
      states[name] = {
        Type: "Task",
        Resource: "arn:aws:states:::local:readItems",
        Parameters: { reader: reader.Parameters ?? {}, writer: writer?.Parameters ?? null },
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
  /** The template's IAM: who each function, job and the state machine are, and what they may do. */
  account: LocalAccount;
  store: S3Store;
  /**
   * What the local Lambda functions get besides the template's environment and their role's
   * credentials: the emulators' endpoints and local-only settings. Read at each cold start.
   */
  lambdaEnv: () => Record<string, string>;
  /** How long an idle Lambda execution environment stays warm (ms). @default 30000 */
  lambdaIdleMs?: number;
  /** Environment for Batch children (endpoints, credentials, teacher). */
  childEnv: NodeJS.ProcessEnv;
  /**
   * The local stand-in for the GPU host's teacher, applied after the state's container overrides:
   * with no GPU, every generate job calls this endpoint (the replay teacher or --teacher-url), even
   * when the run asks for vLLM in the job (`RECIPE_SERVING=batch`).
   */
  teacherEnv?: Record<string, string>;
  /** Batch children run at once. @default 2 */
  batchParallelism?: number;
  /** Distributed Map children run at once. @default the definition's own (MaxConcurrencyPath) */
  mapConcurrency?: number;
  /** The local account's Lambda concurrent executions. @default 10, a new account's */
  accountConcurrency?: number;
  /** Retry intervals are shortened locally (ms). @default 50 */
  retryIntervalMs?: number;
  /**
   * Where each Batch container's output goes, as Batch sends it to CloudWatch Logs: stdout and stderr
   * of every attempt, appended to `<logDir>/<job name>/<index or node>.log` under a line naming the
   * attempt. None kept when not given (stderr still goes to `log`).
   */
  logDir?: string;
  /** How long a stopped job's containers get between SIGTERM and SIGKILL. @default 30000 */
  stopGraceMs?: number;
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

export const STEPS = [
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
  "start-run",
];

/** The Step Functions payload limit for a state's input and output (256 KiB). */
export const STATE_PAYLOAD_LIMIT = 256 * 1024;

function statesError(name: string, message: string): Error {
  return Object.assign(new Error(message), { name });
}

export class LocalRunner {
  readonly definition: Definition;
  readonly lambda: LambdaHost;
  private readonly jobs: Map<string, LocalJobDefinition>;
  private readonly role: Principal;
  private readonly stateMachineArn: string;

  /**
   * The Batch containers running now, and whether the execution stopped (see terminateJobs): then no
   * new container starts until the next execution does.
   */
  private readonly live = new Set<import("node:child_process").ChildProcess>();
  private stopped = false;

  constructor(private readonly o: RunnerOptions) {
    this.definition = localDefinition(stateMachineDefinition(o.template) as Definition, o.mapConcurrency);
    this.lambda = new LambdaHost(lambdaFunctions(o.template, o.account, o.lambdaEnv), {
      idleMs: o.lambdaIdleMs,
      log: o.log,
      accountConcurrency: o.accountConcurrency,
    });
    this.jobs = jobDefinitions(o.template);
    this.role = o.account.stateMachinePrincipal();
    const sm = Object.keys(o.template.Resources).find(
      (id) => o.template.Resources[id]!.Type === "AWS::StepFunctions::StateMachine",
    )!;
    this.stateMachineArn = localRef(o.template)(sm);
  }

  /** Ends the warm Lambda execution environments and the Batch jobs still running. */
  async close(): Promise<void> {
    await this.terminateJobs();
    await this.lambda.close();
  }

  /**
   * What Step Functions does to the `.sync` Batch jobs of an execution that stops (it failed, or the
   * process that runs it is closing): TerminateJob, which stops each container with SIGTERM and, after
   * the grace period, SIGKILL; no new attempt or array child starts meanwhile. Left running, a child
   * went on asking the teacher after its run was over, and what it was answered was never cached.
   */
  async terminateJobs(graceMs = this.o.stopGraceMs ?? 30_000): Promise<void> {
    // Sticky until the next execution starts: a job's loop that sees a terminated child exit must not
    // start the next array child (found by npm run chaos: it did once the stop had been reset, after
    // the process had closed, and that child's answers were never cached).
    this.stopped = true;
    if (this.live.size === 0) return;
    const exits = [...this.live].map(
      (p) =>
        new Promise<void>((r) =>
          p.exitCode !== null || p.signalCode !== null ? r() : p.once("exit", () => r()),
        ),
    );
    for (const p of this.live) p.kill("SIGTERM");
    const timer = setTimeout(() => {
      for (const p of this.live) p.kill("SIGKILL");
    }, graceMs);
    await Promise.all(exits);
    clearTimeout(timer);
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
        const fn = lambdaTarget(s);
        if (fn) tasks[name] = (input) => this.invoke(fn, input);
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

  /** A Lambda task: the state machine's role invokes the function, within the states payload limit. */
  private async invoke(functionArn: string, event: unknown): Promise<unknown> {
    this.o.account.authorize(this.role, "lambda:InvokeFunction", functionArn);
    const step = this.lambda.fn(functionArn).step;
    await this.o.beforeStep?.(step, event);
    const result = await this.lambda.invoke(functionArn, event);
    const size = Buffer.byteLength(JSON.stringify(result));
    if (size > STATE_PAYLOAD_LIMIT)
      throw statesError(
        "States.DataLimitExceeded",
        `The state/task '${step}' returned a result with a size exceeding the maximum number of bytes service limit (${size} > ${STATE_PAYLOAD_LIMIT}).`,
      );
    return result;
  }

  /** The S3 calls a service integration makes with the state machine's role (ItemReader, ResultWriter). */
  private authorizeS3(method: string, bucket: string, key: string): void {
    for (const n of s3Permissions(
      { method, bucket, key, query: {}, headers: {} },
      this.o.account.bucketKeys.get(bucket),
    ))
      this.o.account.authorize(this.role, n.action, n.resource, n.context);
  }

  /**
   * A Distributed Map's start, locally: its child workflow executions (states:StartExecution on the
   * state machine itself), the ItemReader's read of the manifest and the ResultWriter's writes, each
   * checked against the state machine's role before the items are read.
   */
  private async readItems(input: {
    reader: { Bucket?: string; Key: string };
    writer: { Bucket?: string; Prefix?: string } | null;
  }): Promise<unknown[]> {
    this.o.account.authorize(this.role, "states:StartExecution", this.stateMachineArn);
    const bucket = input.reader.Bucket ?? this.o.store.bucket;
    this.authorizeS3("GET", bucket, input.reader.Key);
    if (input.writer) {
      // Step Functions writes manifest.json and the results files under <Prefix>/<map run id>/.
      const prefix = `${(input.writer.Prefix ?? "").replace(/\/$/, "")}/local-map-run`;
      this.authorizeS3("PUT", input.writer.Bucket ?? bucket, `${prefix}/manifest.json`);
      this.authorizeS3("PUT", input.writer.Bucket ?? bucket, `${prefix}/SUCCEEDED_0.json`);
    }
    const items = await readJson<unknown[]>(this.o.store, input.reader.Key);
    if (!items)
      throw Object.assign(new Error(`ItemReader: no object at ${input.reader.Key}`), {
        name: "States.ItemReaderFailed",
      });
    return items;
  }

  private async submitJob(input: {
    JobName: string;
    JobQueue: string;
    JobDefinition: string;
    ArrayProperties?: { Size: number };
    ContainerOverrides?: { Environment?: { Name: string; Value: string }[] };
    NodeOverrides?: {
      NumNodes?: number;
      NodePropertyOverrides?: {
        TargetNodes: string;
        ContainerOverrides?: { Environment?: { Name: string; Value: string }[] };
      }[];
    };
    Timeout?: { AttemptDurationSeconds?: number };
    Tags?: Record<string, string>;
  }): Promise<{ JobId: string; Status: string }> {
    // What the .sync integration does with the state machine's role: the submission (queue and job
    // definition, tags), its managed events rule, then polling and, on a stop, termination.
    this.o.account.authorize(this.role, "batch:SubmitJob", input.JobQueue);
    this.o.account.authorize(this.role, "batch:SubmitJob", input.JobDefinition);
    const events = `arn:aws:events:${LOCAL_REGION}:${LOCAL_ACCOUNT}:rule/StepFunctionsGetEventsForBatchJobsRule`;
    for (const action of ["events:PutTargets", "events:PutRule", "events:DescribeRule"])
      this.o.account.authorize(this.role, action, events);
    const jobArn = `arn:aws:batch:${LOCAL_REGION}:${LOCAL_ACCOUNT}:job/local-${input.JobName}`;
    if (input.Tags && Object.keys(input.Tags).length > 0)
      this.o.account.authorize(this.role, "batch:TagResource", jobArn);
    this.o.account.authorize(this.role, "batch:DescribeJobs", "*");
    this.o.account.authorize(this.role, "batch:TerminateJob", jobArn);
    const def = this.jobs.get(input.JobDefinition);
    if (!def) throw new Error(`unknown job definition ${input.JobDefinition}`);
    if (this.stopped)
      throw Object.assign(new Error(`Batch job ${input.JobName} not started: the execution stopped`), {
        name: "States.TaskFailed",
      });
    // The containers run as the job definition's job role.
    const jobRole = this.o.account.jobPrincipal(input.JobDefinition);
    const env = batchEnvironment(this.o.childEnv, def, jobRole);
    // What SubmitJob refuses, refused here: each kind of job takes its own kind of overrides.
    const invalid = (message: string) => Object.assign(new Error(message), { name: "Batch.BatchException" });
    if (def.multiNode && input.ContainerOverrides)
      throw invalid("containerOverrides is not allowed for a multi-node parallel job: use nodeOverrides");
    if (!def.multiNode && input.NodeOverrides)
      throw invalid("nodeOverrides is only allowed for a multi-node parallel job");
    if (input.NodeOverrides?.NumNodes !== undefined && def.multiNode && !def.multiNode.openRange)
      throw invalid("numNodes can be overridden only when a node range has an open upper bound");
    const overrides = def.multiNode
      ? (input.NodeOverrides?.NodePropertyOverrides ?? []).flatMap(
          (n) => n.ContainerOverrides?.Environment ?? [],
        )
      : (input.ContainerOverrides?.Environment ?? []);
    for (const e of overrides) env[e.Name] = e.Value;
    Object.assign(env, localJobEnv(def.image, env, this.o.teacherEnv));
    // Each job its own scratch disk (each child and node below it its own, emptied per attempt).
    if (env.RECIPE_WORKDIR) env.RECIPE_WORKDIR = jobWorkdir(env.RECIPE_WORKDIR, input.JobName);
    const attemptSeconds = input.Timeout?.AttemptDurationSeconds ?? def.attemptSeconds;
    const size = input.ArrayProperties?.Size ?? 0;
    const indexes = size >= 2 ? Array.from({ length: size }, (_, i) => i) : [0];
    const entry = jobEntry(def.image);
    // As a container whose image lacks its entry fails at once: the job fails, naming what is missing.
    const missing = entryProblem(def.image);
    if (missing)
      throw Object.assign(new Error(`Batch job ${input.JobName} failed: ${missing}`), {
        name: "States.TaskFailed",
      });
    if (def.multiNode) {
      const nodes = input.NodeOverrides?.NumNodes ?? def.multiNode.numNodes;
      await this.multiNodeJob(input.JobName, def, entry, env, nodes, attemptSeconds);
      return { JobId: `local-${input.JobName}`, Status: "SUCCEEDED" };
    }
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < indexes.length && !this.stopped) {
        const index = indexes[next++]!;
        for (let attempt = 1; ; attempt++) {
          const code = await this.child(
            entry,
            {
              ...env,
              AWS_BATCH_JOB_ARRAY_INDEX: String(index),
              ...(size >= 2 && env.RECIPE_WORKDIR
                ? { RECIPE_WORKDIR: join(env.RECIPE_WORKDIR, String(index)) }
                : {}),
            },
            index,
            attempt,
            input.JobName,
            attemptSeconds,
          );
          if (code === 0) break;
          if (this.stopped) {
            failures.push(`child ${index}: terminated (the execution stopped)`);
            break;
          }
          if (code === "timeout") {
            // Batch terminates an attempt that runs past the job's timeout and does not retry it.
            failures.push(
              `child ${index}: attempt ${attempt} ran past the job's attempt timeout of ${attemptSeconds} s (Job attempt duration exceeded timeout; not retried)`,
            );
            break;
          }
          const action = afterExit(def, code);
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

  /**
   * A multi-node parallel job, as Batch runs it: every node at once with Batch's node variables; the
   * job ends when the main node exits (the others are stopped), and the main node's exit decides it
   * and whether the whole job is retried.
   */
  private async multiNodeJob(
    jobName: string,
    def: LocalJobDefinition,
    entry: string,
    env: NodeJS.ProcessEnv,
    nodes: number,
    attemptSeconds?: number,
  ): Promise<void> {
    const main = def.multiNode!.mainNode;
    for (let attempt = 1; ; attempt++) {
      const kills: (() => void)[] = [];
      const exits = Array.from({ length: nodes }, (_, index) =>
        this.child(
          entry,
          {
            ...env,
            AWS_BATCH_JOB_ID: `local-${jobName}#${index}`,
            AWS_BATCH_JOB_ATTEMPT: String(attempt),
            AWS_BATCH_JOB_NUM_NODES: String(nodes),
            AWS_BATCH_JOB_NODE_INDEX: String(index),
            AWS_BATCH_JOB_MAIN_NODE_INDEX: String(main),
            // Each node has its own disk, as each instance of the job does.
            ...(env.RECIPE_WORKDIR ? { RECIPE_WORKDIR: join(env.RECIPE_WORKDIR, `node-${index}`) } : {}),
            ...(index === main ? {} : { AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS: "127.0.0.1" }),
          },
          index,
          attempt,
          jobName,
          attemptSeconds,
          (kill) => kills.push(kill),
        ),
      );
      const code = await exits[main]!;
      for (const kill of kills) kill();
      await Promise.all(exits);
      if (code === 0) return;
      if (this.stopped)
        throw Object.assign(new Error(`Batch job ${jobName} terminated: the execution stopped`), {
          name: "States.TaskFailed",
        });
      // Batch terminates an attempt that runs past the job's timeout and does not retry it.
      const action = code === "timeout" ? "EXIT" : afterExit(def, code);
      this.o.log?.(`${jobName} (${nodes} nodes) attempt ${attempt}: main node exited ${code}`);
      if (action === "EXIT" || attempt >= def.attempts)
        throw Object.assign(
          new Error(
            `Batch job ${jobName} failed: main node exited ${code} after ${attempt} attempt(s) of ${nodes} nodes`,
          ),
          { name: "States.TaskFailed" },
        );
    }
  }

  private child(
    entry: string,
    env: NodeJS.ProcessEnv,
    index: number,
    attempt: number,
    jobName: string,
    attemptSeconds?: number,
    onSpawn?: (kill: () => void) => void,
  ): Promise<number | null | "timeout"> {
    const output = startContainer(env, this.o.logDir, jobName, index, attempt);
    return new Promise((resolve) => {
      // tsx by its own path: the working directory may be a user's data folder without node_modules.
      const p = spawn(process.execPath, ["--import", TSX, entry], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      onSpawn?.(() => p.kill("SIGKILL"));
      this.live.add(p);
      this.o.onBatchChild?.(p, index, attempt, jobName);
      let timedOut = false;
      const timer =
        attemptSeconds === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              p.kill("SIGKILL");
            }, attemptSeconds * 1000);
      p.stdout?.on("data", (d) => output?.write(d));
      p.stderr?.on("data", (d) => {
        output?.write(d);
        this.o.log?.(String(d).trim());
      });
      // After the pipes are drained (exit may come first).
      p.on("close", (code, signal) =>
        output?.end(`=== ${jobName} [${index}] attempt ${attempt} ended: ${signal ?? `exit ${code}`}\n`),
      );
      p.on("exit", (code, signal) => {
        this.live.delete(p);
        clearTimeout(timer);
        resolve(timedOut ? "timeout" : signal ? null : code);
      });
    });
  }

  /**
   * Runs one execution to completion; never throws: the outcome says how it ended. `name` is the
   * execution's name, as `$$.Execution.Name` gives it to the definition (the run id when not given,
   * as the first attempt of a run is named).
   */
  async execute(
    input: unknown,
    name?: string,
  ): Promise<{ status: "SUCCEEDED" | "FAILED"; output?: unknown; error?: string; cause?: string }> {
    this.stopped = false;
    const machine = new StateMachine(this.definition as never, {
      validationOptions: { checkArn: false, checkPaths: false },
    });
    const { tasks, retries } = this.handlers();
    const executionName = name ?? String((input as { runId?: unknown }).runId ?? "local");
    const run = machine.run(input as never, {
      overrides: { taskResourceLocalHandlers: tasks as never, retryIntervalOverrides: retries },
      context: {
        Execution: {
          Id: `${this.stateMachineArn.replace(":stateMachine:", ":execution:")}:${executionName}`,
          Name: executionName,
          Input: input,
          StartTime: new Date().toISOString(),
        },
      } as never,
    });
    try {
      return { status: "SUCCEEDED", output: await run.result };
    } catch (err) {
      const e = err as Error & { cause?: { name?: string; message?: string } };
      // Locally one execution runs per runtime: the jobs still running are this execution's.
      await this.terminateJobs();
      return { status: "FAILED", error: e.cause?.name ?? e.name, cause: e.cause?.message ?? e.message };
    }
  }
}
