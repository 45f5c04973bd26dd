/**
 * The `<stack>-run` state machine (Standard; `RecipePipeline-run` by default): DESIGN.md's flow. Only pointers and counts travel in the
 * state; records live in S3. Distributed Maps read their items from S3 manifests and write their
 * results to S3; GPU stages are AWS Batch jobs run with `submitJob.sync`; every task retries transient
 * errors with backoff and sends everything else to the run-failure handler.
 */
import { Aws, Duration, Stack } from "aws-cdk-lib";
import type * as batch from "aws-cdk-lib/aws-batch";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import * as sfn from "aws-cdk-lib/aws-stepfunctions";
import * as tasks from "aws-cdk-lib/aws-stepfunctions-tasks";
import { Construct } from "constructs";
import type { QueueSize } from "../../core/generate/queues.ts";
import { batchNames, stateMachineName } from "./gpu-batch.ts";

export type StepName =
  | "validate-config"
  | "plan-ingest"
  | "ingest-source"
  | "finish-stage"
  | "plan-dedup"
  | "sign-questions"
  | "group-candidates"
  | "resolve-duplicates"
  | "apply-dedup"
  | "plan-generation"
  | "plan-verify"
  | "verify-shard"
  | "select-and-mix"
  | "write-sft-dataset"
  | "write-rl-dataset"
  | "report"
  | "run-failure";

/** Upper bound of a generate step (distill or rollouts), all Batch attempts included. */
export const GENERATE_STEP_TIMEOUT = Duration.days(4);
/** Upper bound of a training step (train-sft, train-rl): the job's own limit is 14 days an attempt; a week more for a spot reclaim and resume. */
export const TRAIN_STEP_TIMEOUT = Duration.days(21);
/** Upper bound of the evaluate step: 3 days an attempt, and time for a retried one. */
export const EVALUATE_STEP_TIMEOUT = Duration.days(7);

export interface PipelineStateMachineProps {
  readonly functions: Record<StepName, lambda.IFunction>;
  readonly bucket: s3.IBucket;
  /** The generate queues; validate-config names which one each run's distill and rollout jobs use. */
  readonly queues: Record<QueueSize, batch.IJobQueue>;
  readonly generateJob: batch.IJobDefinition;
  readonly trainJob: batch.IJobDefinition;
  /** training.rl.nodes > 1: the multi-node parallel job definition and its on-demand queue. */
  readonly trainMultiNodeJob: batch.IJobDefinition;
  readonly trainQueue: batch.IJobQueue;
  /** train-sft on one node (the large queue) and, training.sft.nodes > 1, on several (trainQueue). */
  readonly trainSftJob: batch.IJobDefinition;
  readonly trainSftMultiNodeJob: batch.IJobDefinition;
  readonly evaluateJob: batch.IJobDefinition;
}

/**
 * Errors a step is retried on: our own transient errors and the Lambda service's (throttling, service
 * and client faults, an invoke that timed out on the service side), as AWS recommends for Lambda tasks.
 * A handler's own timeout (Sandbox.Timedout) and out-of-memory are not retried: a retry would hit the
 * same limit again.
 */
const TRANSIENT = [
  "TransientError",
  "Lambda.ServiceException",
  "Lambda.AWSLambdaException",
  "Lambda.SdkClientException",
  "Lambda.ClientExecutionTimeoutException",
];

/**
 * Throttling (the account's Lambda concurrency is full: another run, another stack, a burst) has its
 * own retrier, ahead of TRANSIENT's: it waits out a stage Lambda that holds a slot for its whole
 * 15-minute timeout. With full jitter a wait is on average half its interval: the 30 attempts wait
 * about 26 minutes in all, on average, not the 155 s the transient retrier's would.
 */
export const THROTTLE_RETRY: sfn.RetryProps = {
  errors: ["Lambda.TooManyRequestsException"],
  interval: Duration.seconds(5),
  maxAttempts: 30,
  backoffRate: 2,
  maxDelay: Duration.minutes(2),
  jitterStrategy: sfn.JitterType.FULL,
};

/**
 * A crashed execution environment: the function's runtime exited mid-invocation (its host failed, the
 * process was killed, a native module crashed). Lambda answers the invoke with the error payload
 * `{"errorType":"Runtime.ExitError","errorMessage":"RequestId: ... Error: Runtime exited with error:
 * ..."}` and Step Functions reports the payload's errorType as the task's error (the payload as its
 * cause). Every step's writes are atomic and its finished work kept, so the invocation is retried, at
 * most twice: a function that exits on every invoke still fails the run. `Lambda.Unknown` (a payload
 * without an errorType) is left out: AWS documents it for out-of-memory and timeouts too, which a
 * retry would hit again.
 */
export const CRASH_RETRY: sfn.RetryProps = {
  errors: ["Runtime.ExitError"],
  interval: Duration.seconds(2),
  maxAttempts: 2,
  backoffRate: 2,
  jitterStrategy: sfn.JitterType.FULL,
};

/** Where the Distributed Maps' result writers put their (unread) results. */
const MAP_RESULTS = "tmp/map-results";

export class PipelineStateMachine extends Construct {
  readonly stateMachine: sfn.StateMachine;
  private readonly props: PipelineStateMachineProps;
  /** Where failures go in the main graph: record failure.json, then fail. */
  private readonly recordFailure: sfn.IChainable;

  constructor(scope: Construct, id: string, props: PipelineStateMachineProps) {
    super(scope, id);
    this.props = props;
    const record = new tasks.LambdaInvoke(this, "RecordFailure", {
      lambdaFunction: props.functions["run-failure"],
      payload: sfn.TaskInput.fromObject({
        "runId.$": "$.runId",
        // Which attempt failed: failure.json belongs to it (attempts/<n>/failure.json).
        "execution.$": "$$.Execution.Name",
        "state.$": "$.failedState",
        "error.$": "$.error",
      }),
      payloadResponseOnly: true,
      resultPath: sfn.JsonPath.DISCARD,
    });
    record.addRetry(THROTTLE_RETRY);
    record.addRetry(CRASH_RETRY);
    record.addRetry({ errors: TRANSIENT, interval: Duration.seconds(2), maxAttempts: 4, backoffRate: 2 });
    this.recordFailure = record.next(
      new sfn.Fail(this, "RunFailed", { error: "RunFailed", cause: "see runs/<run-id>/failure.json" }),
    );

    const validate = this.lambda(
      "ValidateConfig",
      "validate-config",
      // The execution's name tells validate-config which attempt this is (the revision it records).
      { "runId.$": "$.runId", "execution.$": "$$.Execution.Name" },
      "$.config",
      "main",
    );
    const ingestSft = new sfn.Choice(this, "SftSources?")
      .when(sfn.Condition.booleanEquals("$.config.sft", true), this.ingestAndDedup("sft", "main"))
      .otherwise(new sfn.Pass(this, "NoSftSources"))
      .afterwards();
    const parallel = new sfn.Parallel(this, "SftAndRl", { resultPath: sfn.JsonPath.DISCARD });
    parallel.branch(this.sftBranch());
    parallel.branch(this.rlBranch());
    parallel.addCatch(
      new sfn.Pass(this, "SftAndRlFailed", {
        parameters: { "runId.$": "$.runId", failedState: "SftAndRl", "error.$": "$.error" },
      }).next(this.recordFailure),
      { resultPath: "$.error" },
    );
    const train = new sfn.Choice(this, "TrainRequested?")
      .when(
        sfn.Condition.booleanEquals("$.config.train", true),
        new sfn.Choice(this, "TrainOnSeveralNodes?")
          .when(
            sfn.Condition.numberGreaterThan("$.config.trainNodes", 1),
            this.batchJob(
              "TrainRlMultiNode",
              props.trainMultiNodeJob,
              "train",
              false,
              "main",
              props.trainQueue,
            ),
          )
          .otherwise(this.batchJob("TrainRl", props.trainJob, "train", false, "main")),
      )
      .otherwise(new sfn.Pass(this, "NoTraining"))
      .afterwards();
    // After RL training (and SFT's, which the Parallel waited for): the run's models on the benchmarks.
    const evaluate = new sfn.Choice(this, "EvaluateRequested?")
      .when(
        sfn.Condition.booleanEquals("$.config.evaluate", true),
        this.batchJob("Evaluate", props.evaluateJob, "evaluate", false, "main"),
      )
      .otherwise(new sfn.Pass(this, "NoEvaluation"))
      .afterwards();
    const report = this.lambda("Report", "report", { "runId.$": "$.runId" }, "$.report", "main");
    const definition = validate
      .next(ingestSft)
      .next(parallel)
      .next(train)
      .next(evaluate)
      .next(report)
      .next(new sfn.Succeed(this, "Done"));

    const logGroup = new logs.LogGroup(this, "Logs", { retention: logs.RetentionDays.SIX_MONTHS });
    this.stateMachine = new sfn.StateMachine(this, "StateMachine", {
      stateMachineName: stateMachineName(Stack.of(this).stackName),
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: false },
      timeout: Duration.days(30),
    });
    this.scopeMapS3();
    this.grantBatch();
  }

  /**
   * The Distributed Maps' S3 access, as narrow as what they do: the item readers read the manifests
   * under runs/, the result writers write under tmp/map-results/ (multipart for large results). CDK's
   * item reader and result writer grant their actions on every key of the bucket and offer no way to
   * narrow that grant, so an explicit deny bounds it: nothing else in the bucket is readable or
   * writable by the state machine.
   */
  private scopeMapS3(): void {
    const { bucket } = this.props;
    const role = this.stateMachine.role;
    const results = bucket.arnForObjects(`${MAP_RESULTS}/*`);
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ["s3:GetObject"], resources: [bucket.arnForObjects("runs/*")] }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
        resources: [results],
      }),
    );
    // Managed policies (this one and the Batch one): an inline policy counts against the role's
    // 10,240-character total, which the Lambda invoke grants alone nearly fill.
    new iam.ManagedPolicy(this, "MapS3Bounds", {
      roles: [role],
      statements: [
        new iam.PolicyStatement({
          effect: iam.Effect.DENY,
          actions: [
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
            "s3:DeleteObject*",
          ],
          notResources: [results],
        }),
        new iam.PolicyStatement({
          effect: iam.Effect.DENY,
          actions: ["s3:GetObject*"],
          notResources: [bucket.arnForObjects("runs/*"), results],
        }),
      ],
    });
    bucket.encryptionKey?.grant(role, "kms:Decrypt", "kms:GenerateDataKey");
  }

  /**
   * `batch:submitJob.sync` steps are custom states, which add no IAM of their own: the role needs to
   * submit (and tag) jobs on the queue with the two job definitions, describe and terminate them (a
   * stopped run stops its GPU jobs), and manage the events rule Step Functions uses to learn when a
   * job ends. https://docs.aws.amazon.com/step-functions/latest/dg/batch-iam.html
   */
  private grantBatch(): void {
    const stack = Stack.of(this);
    const job = stack.formatArn({ service: "batch", resource: "job", resourceName: "*" });
    const names = batchNames(stack);
    // A managed policy of its own: the role's inline policies together are near IAM's 10,240-character
    // limit per role (the Lambda invoke grants); a managed policy has its own 6,144.
    new iam.ManagedPolicy(this, "BatchJobsPolicy", {
      roles: [this.stateMachine.role],
      statements: [
        new iam.PolicyStatement({
          actions: ["batch:SubmitJob", "batch:TagResource"],
          // By name, not by the resources' own ARNs: the policy then needs nothing from Batch to
          // deploy (LocalStack, which has no Batch, deploys this same stack), and every revision
          // of the two job definitions is covered.
          resources: [
            ...Object.values(names.queues).map((name) =>
              stack.formatArn({ service: "batch", resource: "job-queue", resourceName: name }),
            ),
            stack.formatArn({ service: "batch", resource: "job-queue", resourceName: names.trainQueue }),
            ...[
              names.generate,
              names.train,
              names.trainMultiNode,
              names.trainSft,
              names.trainSftMultiNode,
              names.evaluate,
            ].map((name) =>
              stack.formatArn({ service: "batch", resource: "job-definition", resourceName: `${name}:*` }),
            ),
            job,
          ],
        }),
        new iam.PolicyStatement({ actions: ["batch:TerminateJob"], resources: [job] }),
        // DescribeJobs supports no resource-level permission.
        new iam.PolicyStatement({ actions: ["batch:DescribeJobs"], resources: ["*"] }),
        new iam.PolicyStatement({
          actions: ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
          resources: [
            stack.formatArn({
              service: "events",
              resource: "rule",
              resourceName: "StepFunctionsGetEventsForBatchJobsRule",
            }),
          ],
        }),
      ],
    });
  }

  /**
   * Catch everything a state does not retry. In the main graph: record failure.json and fail. Inside a
   * Parallel branch (which cannot reach outside states): fail the branch carrying the state and cause,
   * and the Parallel's own catch records it.
   */
  private catchTo(
    state: sfn.TaskStateBase | sfn.CustomState | sfn.DistributedMap,
    id: string,
    graph: "main" | "branch",
  ): void {
    if (graph === "main") {
      const mark = new sfn.Pass(this, `${id}Failed`, {
        parameters: { "runId.$": "$.runId", failedState: id, "error.$": "$.error" },
      });
      state.addCatch(mark.next(this.recordFailure), { resultPath: "$.error" });
      return;
    }
    const mark = new sfn.Pass(this, `${id}Failed`, {
      parameters: { state: id, "error.$": "$.error" },
      resultPath: "$.failure",
    });
    const fail = new sfn.Fail(this, `${id}Fail`, {
      errorPath: "$.failure.error.Error",
      causePath: "States.JsonToString($.failure)",
    });
    state.addCatch(mark.next(fail), { resultPath: "$.error" });
  }

  /** A Lambda step: small payload in, small result at `resultPath`, transient retries, catch. */
  private lambda(
    id: string,
    step: StepName,
    payload: Record<string, unknown>,
    resultPath: string,
    graph: "main" | "branch",
  ): tasks.LambdaInvoke {
    const task = new tasks.LambdaInvoke(this, id, {
      lambdaFunction: this.props.functions[step],
      payload: sfn.TaskInput.fromObject(payload),
      payloadResponseOnly: true,
      resultPath,
      retryOnServiceExceptions: false,
    });
    task.addRetry(THROTTLE_RETRY);
    task.addRetry(CRASH_RETRY);
    task.addRetry({
      errors: TRANSIENT,
      interval: Duration.seconds(5),
      maxAttempts: 4,
      backoffRate: 2,
      jitterStrategy: sfn.JitterType.FULL,
    });
    this.catchTo(task, id, graph);
    return task;
  }

  /**
   * finish-stage, given the manifest whose items are the stage's shards: a shard whose Map child
   * failed within the tolerated percentage has no result, and the stage is then not marked done.
   */
  private finish(
    id: string,
    stage: string,
    manifestKeyPath: string,
    graph: "main" | "branch",
  ): tasks.LambdaInvoke {
    return this.lambda(
      id,
      "finish-stage",
      { "runId.$": "$.runId", stage, "manifest.$": manifestKeyPath },
      sfn.JsonPath.DISCARD,
      graph,
    );
  }

  /** A Distributed Map over a manifest in S3, each item one Lambda child, results written to S3. */
  private map(
    id: string,
    manifestPath: string,
    step: StepName,
    childPayload: Record<string, unknown>,
    graph: "main" | "branch",
  ): sfn.DistributedMap {
    const map = new sfn.DistributedMap(this, id, {
      itemReader: new sfn.S3JsonItemReader({
        bucket: this.props.bucket,
        key: sfn.JsonPath.stringAt(`${manifestPath}.key`),
      }),
      itemSelector: { "runId.$": "$.runId", "item.$": "$$.Map.Item.Value" },
      maxConcurrencyPath: sfn.JsonPath.stringAt("$.config.mapMaxConcurrency"),
      toleratedFailurePercentagePath: sfn.JsonPath.stringAt("$.config.toleratedFailurePercentage"),
      // Results go to S3 so they never count against the 256 KiB state payload; nothing reads them.
      // No WriterConfig (JSONL/COMPACT): AWS writes the default JSON files just as well, and
      // LocalStack's parser rejects the field, so the stack the LocalStack suite deploys is this one.
      resultWriterV2: new sfn.ResultWriterV2({ bucket: this.props.bucket, prefix: MAP_RESULTS }),
      resultPath: sfn.JsonPath.DISCARD,
      label: id,
    });
    const child = new tasks.LambdaInvoke(this, `${id}Child`, {
      lambdaFunction: this.props.functions[step],
      payload: sfn.TaskInput.fromObject({ "runId.$": "$.runId", "item.$": "$.item", ...childPayload }),
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
    });
    child.addRetry(THROTTLE_RETRY);
    child.addRetry(CRASH_RETRY);
    child.addRetry({
      errors: TRANSIENT,
      interval: Duration.seconds(5),
      maxAttempts: 5,
      backoffRate: 2,
      jitterStrategy: sfn.JitterType.FULL,
    });
    map.itemProcessor(child);
    this.catchTo(map, id, graph);
    return map;
  }

  /**
   * A GPU job with `submitJob.sync`: an array job of the plan's size, or a plain job when the plan has
   * one item (Batch arrays start at 2); the run id and mode in its environment.
   */
  private batchJob(
    id: string,
    job: batch.IJobDefinition,
    mode: "distill" | "rollouts" | "train" | "train-sft" | "evaluate",
    array: boolean,
    graph: "main" | "branch",
    /** A multi-node parallel job's own queue: it is submitted with training.rl.nodes nodes. */
    multiNodeQueue?: batch.IJobQueue,
  ): sfn.IChainable {
    const env: Record<string, string>[] = [
      { Name: "RECIPE_RUN_ID", "Value.$": "$.runId" },
      { Name: "RECIPE_MODE", Value: mode },
    ];
    // distill and rollouts serve a model per run (validate-config's queue and model); the training and
    // evaluation jobs read what they need from the run's resolved config.
    const generate = mode === "distill" || mode === "rollouts";
    if (generate)
      env.push({
        Name: "RECIPE_SERVE_MODEL",
        "Value.$": mode === "distill" ? "$.config.teacherModel" : "$.config.policyModel",
      });
    // The teacher may be a hosted endpoint (teacher.serving "endpoint"): the job then calls it instead
    // of starting vLLM. The policy's rollouts are always served in the job.
    if (mode === "distill")
      env.push(
        { Name: "RECIPE_SERVING", "Value.$": "$.config.teacherServing" },
        { Name: "OPENAI_BASE_URL", "Value.$": "$.config.teacherUrl" },
      );
    if (mode === "rollouts") env.push({ Name: "RECIPE_SERVING", Value: "batch" });
    if (generate)
      env.push({
        Name: "RECIPE_WEIGHTS_URI",
        "Value.$": mode === "distill" ? "$.config.teacherWeightsUri" : "$.config.policyWeightsUri",
      });
    const make = (suffix: string, withArray: boolean) => {
      const state = new sfn.CustomState(this, `${id}${suffix}`, {
        stateJson: {
          Type: "Task",
          Resource: `arn:${Aws.PARTITION}:states:::batch:submitJob.sync`,
          Parameters: {
            "JobName.$": `States.Format('${id}-{}', $.runId)`,
            // The queue whose instance types hold the model (validate-config's pick, per run); training
            // on one node needs a p5-class host (900 GiB of memory, 8 GPUs): the large queue.
            ...(!generate
              ? { JobQueue: (multiNodeQueue ?? this.props.queues.large).jobQueueArn }
              : { "JobQueue.$": mode === "distill" ? "$.config.teacherQueue" : "$.config.policyQueue" }),
            JobDefinition: job.jobDefinitionArn,
            ...(withArray ? { ArrayProperties: { "Size.$": "$.plan.arraySize" } } : {}),
            // A multi-node job takes its node count and every node's environment in NodeOverrides
            // (Batch refuses ContainerOverrides for it).
            ...(multiNodeQueue
              ? {
                  NodeOverrides: {
                    "NumNodes.$": mode === "train-sft" ? "$.config.trainSftNodes" : "$.config.trainNodes",
                    NodePropertyOverrides: [{ TargetNodes: "0:", ContainerOverrides: { Environment: env } }],
                  },
                }
              : { ContainerOverrides: { Environment: env } }),
            // batch.jobTimeoutHours bounds each attempt of the generate jobs (training keeps its own).
            ...(!generate ? {} : { Timeout: { "AttemptDurationSeconds.$": "$.config.jobTimeoutSeconds" } }),
            Tags: { "recipe-run.$": "$.runId" },
          },
          ResultSelector: { "jobId.$": "$.JobId", "status.$": "$.Status" },
          ResultPath: `$.batch${id}`,
          // A job that never leaves RUNNABLE is cancelled by the queue; this bounds the whole step
          // (every Batch attempt included) so a stuck run fails with States.Timeout, not in 30 days.
          TimeoutSeconds: (generate
            ? GENERATE_STEP_TIMEOUT
            : mode === "evaluate"
              ? EVALUATE_STEP_TIMEOUT
              : TRAIN_STEP_TIMEOUT
          ).toSeconds(),
        },
      });
      state.addRetry({
        errors: ["Batch.AWSBatchException", "Batch.TooManyRequestsException"],
        interval: Duration.seconds(10),
        maxAttempts: 5,
        backoffRate: 2,
      });
      this.catchTo(state, `${id}${suffix}`, graph);
      return state;
    };
    if (!array) return make("", false);
    return new sfn.Choice(this, `${id}ArrayOrSingle?`)
      .when(sfn.Condition.booleanEquals("$.plan.isArray", true), make("Array", true))
      .otherwise(make("Single", false))
      .afterwards();
  }

  private ingestAndDedup(branch: "sft" | "rl", graph: "main" | "branch"): sfn.Chain {
    const B = branch === "sft" ? "Sft" : "Rl";
    return this.lambda(
      `PlanIngest${B}`,
      "plan-ingest",
      { "runId.$": "$.runId", branch },
      "$.ingestPlan",
      graph,
    )
      .next(this.map(`Ingest${B}Map`, "$.ingestPlan.manifest", "ingest-source", {}, graph))
      .next(this.finish(`FinishIngest${B}`, `ingest-${branch}`, "$.ingestPlan.manifest.key", graph))
      .next(this.dedup(branch, graph));
  }

  /**
   * Dedup as a fan-out keyed by LSH band (core/pipeline/dedup-step.ts): sign each question shard
   * into band partitions, group each partition's buckets into candidate pairs, resolve the pairs in
   * one step, apply the decisions per shard. Skipped when the stage's `_SUCCESS` exists.
   */
  private dedup(branch: "sft" | "rl", graph: "main" | "branch"): sfn.Chain {
    const B = branch === "sft" ? "Sft" : "Rl";
    const plan = this.lambda(
      `PlanDedup${B}`,
      "plan-dedup",
      { "runId.$": "$.runId", branch },
      "$.dedupPlan",
      graph,
    );
    const work = this.map(`SignQuestions${B}Map`, "$.dedupPlan.sign", "sign-questions", {}, graph)
      .next(this.map(`GroupCandidates${B}Map`, "$.dedupPlan.partitions", "group-candidates", {}, graph))
      .next(
        this.lambda(
          `ResolveDuplicates${B}`,
          "resolve-duplicates",
          { "runId.$": "$.runId", branch },
          sfn.JsonPath.DISCARD,
          graph,
        ),
      )
      .next(this.map(`ApplyDedup${B}Map`, "$.dedupPlan.apply", "apply-dedup", {}, graph))
      .next(this.finish(`FinishDedup${B}`, `dedup-${branch}`, "$.dedupPlan.apply.key", graph));
    return plan.next(
      new sfn.Choice(this, `Dedup${B}Done?`)
        .when(
          sfn.Condition.booleanEquals("$.dedupPlan.done", true),
          new sfn.Pass(this, `Dedup${B}AlreadyDone`),
        )
        .otherwise(work)
        .afterwards(),
    );
  }

  /** plan -> generate on GPUs (when there are questions) -> finish -> plan verify -> verify Map -> finish. */
  private generateAndVerify(branch: "sft" | "rl"): sfn.Chain {
    const B = branch === "sft" ? "Sft" : "Rl";
    const planStage = branch === "sft" ? "plan-distill" : "plan-rollouts";
    const genStage = branch === "sft" ? "distill" : "estimate-difficulty";
    const verifyStage = branch === "sft" ? "verify-traces" : "filter-rl";
    const plan = this.lambda(
      `Plan${B}Generation`,
      "plan-generation",
      { "runId.$": "$.runId", branch, planStage },
      "$.plan",
      "branch",
    );
    const generate = new sfn.Choice(this, `${B}HasQuestions?`)
      .when(
        sfn.Condition.booleanEquals("$.plan.hasWork", true),
        this.batchJob(
          branch === "sft" ? "Distill" : "Rollouts",
          this.props.generateJob,
          branch === "sft" ? "distill" : "rollouts",
          true,
          "branch",
        ),
      )
      .otherwise(new sfn.Pass(this, `${B}NothingToGenerate`))
      .afterwards();
    return plan
      .next(generate)
      .next(this.finish(`Finish${B}Generation`, genStage, "$.plan.manifest.key", "branch"))
      .next(
        this.lambda(
          `Plan${B}Verify`,
          "plan-verify",
          { "runId.$": "$.runId", branch, planStage, generateStage: genStage, stage: verifyStage },
          "$.verifyPlan",
          "branch",
        ),
      )
      .next(
        this.map(
          `${B}VerifyMap`,
          "$.verifyPlan.manifest",
          "verify-shard",
          { stage: verifyStage, mode: branch === "sft" ? "sft" : "rollouts" },
          "branch",
        ),
      )
      .next(this.finish(`Finish${B}Verify`, verifyStage, "$.verifyPlan.manifest.key", "branch"));
  }

  private sftBranch(): sfn.IChainable {
    // select-and-mix as a fan-out over the verified shards: select per shard, plan the mix once from
    // the shards' compact indexes, apply per shard, then finish (core/pipeline/verify-step.ts).
    const mixStep = (id: string, phase: "plan" | "finish") =>
      this.lambda(
        id,
        "select-and-mix",
        { "runId.$": "$.runId", phase, "shards.$": "$.verifyPlan.shards" },
        sfn.JsonPath.DISCARD,
        "branch",
      );
    const work = this.generateAndVerify("sft")
      .next(
        this.map("SelectTracesMap", "$.verifyPlan.manifest", "select-and-mix", { phase: "select" }, "branch"),
      )
      .next(mixStep("PlanMix", "plan"))
      .next(this.map("ApplyMixMap", "$.verifyPlan.manifest", "select-and-mix", { phase: "apply" }, "branch"))
      .next(mixStep("FinishMix", "finish"))
      // The SFT set as a fan-out too: a part per mix shard, then one step joins the parts.
      .next(
        this.map(
          "WriteSftPartsMap",
          "$.verifyPlan.manifest",
          "write-sft-dataset",
          { phase: "part" },
          "branch",
        ),
      )
      .next(
        this.lambda(
          "WriteSftDataset",
          "write-sft-dataset",
          { "runId.$": "$.runId", phase: "finish", "shards.$": "$.verifyPlan.shards" },
          "$.sft",
          "branch",
        ),
      )
      // The SFT cold start on the set just written; RL training (after the Parallel) waits for it.
      .next(
        new sfn.Choice(this, "TrainSftRequested?")
          .when(
            sfn.Condition.booleanEquals("$.config.trainSft", true),
            new sfn.Choice(this, "TrainSftOnSeveralNodes?")
              .when(
                sfn.Condition.numberGreaterThan("$.config.trainSftNodes", 1),
                this.batchJob(
                  "TrainSftMultiNode",
                  this.props.trainSftMultiNodeJob,
                  "train-sft",
                  false,
                  "branch",
                  this.props.trainQueue,
                ),
              )
              .otherwise(this.batchJob("TrainSft", this.props.trainSftJob, "train-sft", false, "branch")),
          )
          .otherwise(new sfn.Pass(this, "NoTrainSft")),
      );
    return new sfn.Choice(this, "SftEnabled?")
      .when(sfn.Condition.booleanEquals("$.config.sft", true), work)
      .otherwise(new sfn.Pass(this, "NoSft"));
  }

  private rlBranch(): sfn.IChainable {
    const work = this.ingestAndDedup("rl", "branch")
      .next(this.generateAndVerify("rl"))
      // The RL set as a fan-out: the plan numbers the rows, a part per filter-rl shard, then the finish.
      .next(
        this.lambda(
          "PlanRlDataset",
          "write-rl-dataset",
          { "runId.$": "$.runId", phase: "plan" },
          "$.rlPlan",
          "branch",
        ),
      )
      .next(
        this.map("WriteRlPartsMap", "$.verifyPlan.manifest", "write-rl-dataset", { phase: "part" }, "branch"),
      )
      .next(
        this.lambda(
          "WriteRlDataset",
          "write-rl-dataset",
          { "runId.$": "$.runId", phase: "finish" },
          "$.rl",
          "branch",
        ),
      );
    return new sfn.Choice(this, "RlEnabled?")
      .when(sfn.Condition.booleanEquals("$.config.rl", true), work)
      .otherwise(new sfn.Pass(this, "NoRl"));
  }
}
