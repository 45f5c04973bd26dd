/**
 * The synthesized stack (the same app `npx cdk synth` runs): bucket, trigger, state machine, IAM
 * scoping, Batch retry rules, alarms, cdk-nag, asl-validator, Lambda bundle sizes.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import aslValidator from "asl-validator";
import { App } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import cdkNag from "cdk-nag";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { settingsFrom } from "../../infra/config.ts";
import { acknowledgeNagFindings } from "../../infra/nag.ts";
import { RecipePipelineStack } from "../../infra/stack.ts";
import { localRef, stateMachineDefinition } from "../../local/definition.ts";
import { LocalAccount } from "../../local/iam/account.ts";

let template: Template;
let json: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };
let definition: { States: Record<string, Record<string, unknown>>; StartAt: string };
let outdir: string;
let stack: RecipePipelineStack;

type State = Record<string, unknown> & {
  Type: string;
  States?: Record<string, State>;
  Branches?: { States: Record<string, State> }[];
  ItemProcessor?: { States: Record<string, State> };
};

function allStates(states: Record<string, State>): [string, State][] {
  const out: [string, State][] = [];
  for (const [name, s] of Object.entries(states)) {
    out.push([name, s]);
    for (const b of s.Branches ?? []) out.push(...allStates(b.States));
    if (s.ItemProcessor) out.push(...allStates(s.ItemProcessor.States));
  }
  return out;
}

// Every app synthesizes into a temporary folder removed after the file: CDK's default is a new
// `cdk.out*` folder in the system temp folder per synthesis, never removed.
const outdirs: string[] = [];
function tempOutdir(): string {
  const dir = mkdtempSync(join(tmpdir(), "cdk-out-"));
  outdirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

beforeAll(() => {
  outdir = tempOutdir();
  const app = new App({
    outdir,
    context: { "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2": true },
  });
  stack = new RecipePipelineStack(app, "RecipePipeline", { settings: settingsFrom(app.node) });
  acknowledgeNagFindings(stack, new cdkNag.AwsSolutionsChecks());
  template = Template.fromStack(stack);
  json = template.toJSON() as typeof json;
  definition = stateMachineDefinition(json) as typeof definition;
}, 240_000);

describe("bucket", () => {
  it("is KMS encrypted, versioned, logged, private, SSL only, retained and sends EventBridge events", () => {
    template.hasResource("AWS::S3::Bucket", {
      DeletionPolicy: "Retain",
      Properties: Match.objectLike({
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            Match.objectLike({
              ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: "aws:kms" }),
            }),
          ],
        },
        VersioningConfiguration: { Status: "Enabled" },
        LoggingConfiguration: Match.objectLike({ LogFilePrefix: "pipeline-bucket/" }),
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        LifecycleConfiguration: {
          Rules: Match.arrayWith([
            Match.objectLike({
              Id: "abort-incomplete-uploads",
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 2 },
            }),
            Match.objectLike({ Id: "generation-cache", Prefix: "cache/generate/" }),
          ]),
        },
      }),
    });
    template.hasResourceProperties("Custom::S3BucketNotifications", {
      NotificationConfiguration: { EventBridgeConfiguration: {} },
    });
    template.hasResourceProperties("AWS::S3::BucketPolicy", {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
        ]),
      },
    });
  });
});

describe("trigger", () => {
  it("starts a run on Object Created for runs/*/run.json only", () => {
    template.hasResourceProperties("AWS::Events::Rule", {
      EventPattern: {
        source: ["aws.s3"],
        "detail-type": ["Object Created"],
        detail: { bucket: { name: [Match.anyValue()] }, object: { key: [{ wildcard: "runs/*/run.json" }] } },
      },
    });
  });
});

describe("state machine", () => {
  it("is a Standard state machine named after the stack, with tracing and logging", () => {
    template.hasResourceProperties("AWS::StepFunctions::StateMachine", {
      StateMachineName: "RecipePipeline-run",
      StateMachineType: "STANDARD",
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: "ALL" }),
    });
  });

  it("has the flow's states", () => {
    const names = allStates(definition.States as Record<string, State>).map(([n]) => n);
    expect(definition.StartAt).toBe("ValidateConfig");
    for (const s of [
      "ValidateConfig",
      "IngestSftMap",
      "SignQuestionsSftMap",
      "GroupCandidatesSftMap",
      "ResolveDuplicatesSft",
      "ApplyDedupSftMap",
      "DistillArray",
      "DistillSingle",
      "SftVerifyMap",
      "SelectTracesMap",
      "PlanMix",
      "ApplyMixMap",
      "FinishMix",
      "WriteSftDataset",
      "IngestRlMap",
      "SignQuestionsRlMap",
      "GroupCandidatesRlMap",
      "ResolveDuplicatesRl",
      "ApplyDedupRlMap",
      "RolloutsArray",
      "RlVerifyMap",
      "WriteRlDataset",
      "TrainSft",
      "TrainSftMultiNode",
      "TrainRl",
      "Evaluate",
      "Report",
      "RecordFailure",
    ]) {
      expect(names).toContain(s);
    }
  });

  it("reads Distributed Map items from S3 manifests and writes results to S3", () => {
    const maps = allStates(definition.States as Record<string, State>).filter(([, s]) => s.Type === "Map");
    expect(maps.map(([n]) => n).sort()).toEqual([
      "ApplyDedupRlMap",
      "ApplyDedupSftMap",
      "ApplyMixMap",
      "GroupCandidatesRlMap",
      "GroupCandidatesSftMap",
      "IngestRlMap",
      "IngestSftMap",
      "RlVerifyMap",
      "SelectTracesMap",
      "SftVerifyMap",
      "SignQuestionsRlMap",
      "SignQuestionsSftMap",
      "WriteRlPartsMap",
      "WriteSftPartsMap",
    ]);
    for (const [, m] of maps) {
      expect(m.ItemReader).toMatchObject({
        Resource: "arn:aws:states:::s3:getObject",
        ReaderConfig: { InputType: "JSON" },
      });
      expect(m.ResultWriter).toBeDefined();
      expect(m.ItemProcessor).toMatchObject({ ProcessorConfig: { Mode: "DISTRIBUTED" } });
      expect(m.MaxConcurrencyPath).toBe("$.config.mapMaxConcurrency");
      expect(m.ToleratedFailurePercentagePath).toBe("$.config.toleratedFailurePercentage");
    }
  });

  it("runs GPU stages with submitJob.sync and an array size from the plan", () => {
    const distill = allStates(definition.States as Record<string, State>).find(
      ([n]) => n === "DistillArray",
    )![1];
    expect(distill.Resource).toBe("arn:aws:states:::batch:submitJob.sync");
    expect((distill.Parameters as Record<string, unknown>).ArrayProperties).toEqual({
      "Size.$": "$.plan.arraySize",
    });
  });

  it("retries transient errors with backoff and catches everything else on every task", () => {
    const tasks = allStates(definition.States as Record<string, State>).filter(
      ([n, s]) => s.Type === "Task" && n !== "RecordFailure" && !n.endsWith("Child"),
    );
    expect(tasks.length).toBeGreaterThan(15);
    for (const [name, t] of tasks) {
      const retry = (t.Retry ?? []) as { ErrorEquals: string[]; BackoffRate?: number }[];
      expect(retry.length, name).toBeGreaterThan(0);
      expect(
        retry.some((r) => (r.BackoffRate ?? 1) > 1),
        name,
      ).toBe(true);
      expect((t.Catch as unknown[] | undefined)?.length, name).toBeGreaterThan(0);
    }
    const validate = definition.States.ValidateConfig as State;
    expect(JSON.stringify(validate.Retry)).toContain("TransientError");
  });

  it("retries a crashed Lambda execution environment (Runtime.ExitError) on every Lambda task, and not a timeout or out-of-memory", async () => {
    // Found by npm run chaos: a Lambda environment that exited mid-invocation failed the whole execution.
    // Step Functions reports a function error by its payload's errorType: Runtime.ExitError for a crash.
    const lambdaTasks = allStates(definition.States as Record<string, State>).filter(
      ([, s]) => s.Type === "Task" && /"arn:aws:lambda:/.test(JSON.stringify(s.Resource)),
    );
    expect(lambdaTasks.length).toBeGreaterThan(15);
    type Retrier = { ErrorEquals: string[]; MaxAttempts?: number };
    for (const [name, t] of lambdaTasks) {
      const retry = (t.Retry ?? []) as Retrier[];
      const crash = retry.find((r) => r.ErrorEquals.includes("Runtime.ExitError"));
      expect(crash?.MaxAttempts, name).toBe(2);
      const all = retry.flatMap((r) => r.ErrorEquals);
      for (const never of ["Sandbox.Timedout", "Runtime.OutOfMemory", "Lambda.Unknown", "States.ALL"])
        expect(all, `${name} retries ${never}`).not.toContain(never);
    }

    // The synthesized retriers, as an interpreter applies them: two crashes are survived, three fail.
    await import("../../local/polyfills.ts");
    const { StateMachine } = await import("aws-local-stepfunctions");
    const [, task] = lambdaTasks.find(([n]) => n === "ValidateConfig")!;
    const crashes = async (n: number) => {
      let calls = 0;
      const machine = new StateMachine(
        {
          StartAt: "T",
          States: {
            T: {
              Type: "Task",
              Resource: "arn:aws:lambda:us-east-1:1:function:f",
              Retry: task.Retry,
              End: true,
            },
          },
        } as never,
        { validationOptions: { checkArn: false } },
      );
      const run = machine.run(
        {},
        {
          overrides: {
            taskResourceLocalHandlers: {
              T: async () => {
                calls += 1;
                if (calls <= n) throw Object.assign(new Error("{}"), { name: "Runtime.ExitError" });
                return { ok: true };
              },
            },
            retryIntervalOverrides: { T: 0 },
          },
        },
      );
      const outcome = await run.result.then(
        () => "SUCCEEDED",
        (err: Error & { cause?: { name?: string } }) => err.cause?.name ?? err.name,
      );
      return { outcome, calls };
    };
    expect(await crashes(2)).toEqual({ outcome: "SUCCEEDED", calls: 3 });
    expect(await crashes(3)).toEqual({ outcome: "Runtime.ExitError", calls: 3 });
  });

  it("passes asl-validator", () => {
    const { isValid, errorsText } = aslValidator(definition as never);

    expect(isValid, errorsText?.("\n")).toBe(true);
  });
});

describe("IAM", () => {
  it("never grants S3 data actions on every resource", () => {
    const policies = Object.values(json.Resources).filter((r) => r.Type === "AWS::IAM::Policy");
    for (const p of policies) {
      const statements = (
        p.Properties!.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }
      ).Statement;
      for (const st of statements) {
        const actions = ([] as string[]).concat(st.Action);
        if (!actions.some((a) => /^s3:(Get|Put|Delete)Object/.test(a))) continue;
        expect(([] as unknown[]).concat(st.Resource)).not.toContain("*");
      }
    }
  });

  it("lets every step that reads the bucket list it, so a missing key is a 404 and not a 403", () => {
    const policies = Object.entries(json.Resources).filter(
      ([id, r]) => r.Type === "AWS::IAM::Policy" && id.startsWith("Step") && !id.startsWith("Stepstartrun"),
    );
    expect(policies.length).toBeGreaterThan(10);
    for (const [id, p] of policies) {
      const statements = (
        p.Properties!.PolicyDocument as {
          Statement: { Action: string | string[]; Resource: unknown; Condition?: unknown }[];
        }
      ).Statement;
      const list = statements.find(
        (st) => ([] as string[]).concat(st.Action).includes("s3:ListBucket") && st.Condition === undefined,
      );
      expect(list, id).toBeDefined();
    }
  });

  it("scopes each step's S3 writes to its own key patterns", () => {
    const policy = Object.entries(json.Resources).find(
      ([id, r]) => r.Type === "AWS::IAM::Policy" && id.includes("Stepvalidateconfig"),
    )![1];
    const text = JSON.stringify(policy.Properties);

    expect(text).toContain("/runs/*/config.json");
    expect(text).toContain("/runs/*/failure.json");
    expect(text).not.toContain("/runs/*/datasets");
  });
});

describe("Batch", () => {
  it("retries spot reclaims and exit 75, and fails at once on exit 3", () => {
    template.hasResourceProperties("AWS::Batch::JobDefinition", {
      RetryStrategy: {
        Attempts: 10,
        EvaluateOnExit: Match.arrayWith([
          Match.objectLike({ Action: "RETRY", OnStatusReason: "Host EC2*" }),
          Match.objectLike({ Action: "RETRY", OnExitCode: "75" }),
          Match.objectLike({ Action: "EXIT", OnExitCode: "3" }),
        ]),
      },
    });
  });

  it("queues on spot first and on-demand second, with GPU containers and shared memory", () => {
    template.hasResourceProperties("AWS::Batch::JobQueue", {
      ComputeEnvironmentOrder: [Match.objectLike({ Order: 1 }), Match.objectLike({ Order: 2 })],
    });
    template.hasResourceProperties("AWS::Batch::JobDefinition", {
      ContainerProperties: Match.objectLike({
        ResourceRequirements: Match.arrayWith([{ Type: "GPU", Value: "8" }]),
        LinuxParameters: Match.objectLike({ SharedMemorySize: Match.anyValue() }),
      }),
    });
  });
});

describe("first deploy on a new account (issue 12)", () => {
  type Statement = { Action: string | string[]; Resource: unknown; Effect: string };
  const roleStatements = (match: RegExp): Statement[] =>
    Object.entries(json.Resources)
      .filter(
        ([id, r]) =>
          (r.Type === "AWS::IAM::Policy" || r.Type === "AWS::IAM::ManagedPolicy") && match.test(id),
      )
      .flatMap(([, r]) => (r.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
  const actions = (st: Statement[]) => st.flatMap((x) => (Array.isArray(x.Action) ? x.Action : [x.Action]));

  it("lets the state machine submit, tag, describe and terminate Batch jobs and manage the Batch events rule", () => {
    const granted = actions(roleStatements(/^Pipeline(StateMachineRole|BatchJobsPolicy)/));

    expect(granted).toEqual(
      expect.arrayContaining([
        "batch:SubmitJob",
        "batch:TagResource",
        "batch:DescribeJobs",
        "batch:TerminateJob",
        "events:PutTargets",
        "events:PutRule",
        "events:DescribeRule",
      ]),
    );
    const rule = roleStatements(/^Pipeline(StateMachineRole|BatchJobsPolicy)/).find((x) =>
      actions([x]).includes("events:PutRule"),
    );
    expect(JSON.stringify(rule?.Resource)).toContain("rule/StepFunctionsGetEventsForBatchJobsRule");
  });

  it("names in its Batch policy exactly the queue and job definitions the state machine submits to", () => {
    const named = (type: string, prop: string) =>
      Object.values(json.Resources)
        .filter((r) => r.Type === type)
        .map((r) => String(r.Properties?.[prop]));
    const queues = named("AWS::Batch::JobQueue", "JobQueueName");
    const definitions = named("AWS::Batch::JobDefinition", "JobDefinitionName");
    expect(queues.sort()).toEqual([
      "RecipePipeline-gpu-large",
      "RecipePipeline-gpu-small",
      "RecipePipeline-train-multinode",
    ]);
    expect(definitions.sort()).toEqual([
      "RecipePipeline-evaluate",
      "RecipePipeline-generate",
      "RecipePipeline-train-rl",
      "RecipePipeline-train-rl-multinode",
      "RecipePipeline-train-sft",
      "RecipePipeline-train-sft-multinode",
    ]);

    const submit = roleStatements(/^PipelineBatchJobsPolicy/).find((x) =>
      actions([x]).includes("batch:SubmitJob"),
    )!;
    const resources = JSON.stringify(submit.Resource);
    for (const q of queues) expect(resources).toContain(`:job-queue/${q}`);
    for (const d of definitions) expect(resources).toContain(`:job-definition/${d}:*`);
    // Nothing from the Batch resources themselves: the policy deploys where Batch is absent (LocalStack).
    const batchIds = Object.entries(json.Resources)
      .filter(([, r]) => r.Type.startsWith("AWS::Batch::"))
      .map(([id]) => id);
    for (const id of batchIds) expect(resources).not.toContain(`"${id}"`);
  });

  it("tells NCCL and Gloo in the multi-node job to use no loopback, Docker or ECS interface (ecs-eth0 refuses NCCL's connections)", () => {
    const [mnp] = Object.values(json.Resources).filter(
      (r) => r.Type === "AWS::Batch::JobDefinition" && r.Properties?.Type === "multinode",
    );
    const container = (
      mnp!.Properties!.NodeProperties as {
        NodeRangeProperties: { Container: { Environment: { Name: string; Value: string }[] } }[];
      }
    ).NodeRangeProperties[0]!.Container;

    const env = Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value]));

    expect(env.NCCL_SOCKET_IFNAME).toBe("^lo,docker,ecs");
    expect(env.GLOO_SOCKET_IFNAME).toBe("^lo,docker,ecs");
  });

  it("trains on several nodes as a multi-node parallel job, on on-demand hosts in one placement group that reach each other", () => {
    const [mnp] = Object.values(json.Resources).filter(
      (r) => r.Type === "AWS::Batch::JobDefinition" && r.Properties?.Type === "multinode",
    );
    const nodes = mnp!.Properties!.NodeProperties as {
      MainNode: number;
      NodeRangeProperties: {
        TargetNodes: string;
        Container: { Image: unknown; ResourceRequirements: unknown[] };
      }[];
    };
    // An open range: Batch accepts nodeOverrides.numNodes (training.nodes) only then.
    expect(nodes.NodeRangeProperties.map((n) => n.TargetNodes)).toEqual(["0:"]);
    expect(nodes.MainNode).toBe(0);
    expect(JSON.stringify(nodes.NodeRangeProperties[0]!.Container.ResourceRequirements)).toContain(
      '"Type":"GPU"',
    );
    expect(
      (mnp!.Properties!.RetryStrategy as { EvaluateOnExit: { OnExitCode?: string }[] }).EvaluateOnExit.at(-1)
        ?.OnExitCode,
    ).toBe("*");

    // Its queue has only on-demand capacity (Batch runs no multi-node job on Spot), in a cluster
    // placement group; its security group lets the nodes talk to each other.
    const queue = Object.values(json.Resources).find(
      (r) =>
        r.Type === "AWS::Batch::JobQueue" && r.Properties?.JobQueueName === "RecipePipeline-train-multinode",
    )!;
    const ceIds = (
      queue.Properties!.ComputeEnvironmentOrder as {
        ComputeEnvironment: { "Fn::GetAtt"?: string[]; Ref?: string };
      }[]
    ).map((o) => o.ComputeEnvironment["Fn::GetAtt"]?.[0] ?? o.ComputeEnvironment.Ref);
    expect(ceIds).toHaveLength(1);
    const ce = json.Resources[ceIds[0]!]!.Properties!.ComputeResources as Record<string, unknown>;
    expect(ce.Type).toBe("EC2");
    expect(ce.PlacementGroup).toBeDefined();
    expect((ce.Subnets as unknown[]).length).toBe(1);
    const placement = Object.values(json.Resources).find((r) => r.Type === "AWS::EC2::PlacementGroup");
    expect(placement?.Properties?.Strategy).toBe("cluster");
    const selfIngress = Object.values(json.Resources).filter(
      (r) =>
        r.Type === "AWS::EC2::SecurityGroupIngress" && JSON.stringify(r.Properties).includes("Ray and NCCL"),
    );
    expect(selfIngress).toHaveLength(1);

    // The state machine submits it only for training.nodes > 1, with that many nodes.
    const states = allStates(definition.States as Record<string, State>);
    const choice = states.find(([n]) => n === "TrainOnSeveralNodes?")![1] as unknown as {
      Choices: { Variable: string; NumericGreaterThan: number }[];
    };
    expect(choice.Choices[0]).toMatchObject({ Variable: "$.config.trainNodes", NumericGreaterThan: 1 });
    const submit = states.find(([n]) => n === "TrainRlMultiNode")![1] as unknown as {
      Parameters: { NodeOverrides: Record<string, unknown>; ContainerOverrides?: unknown };
    };
    expect(submit.Parameters.NodeOverrides["NumNodes.$"]).toBe("$.config.trainNodes");
    expect(submit.Parameters.ContainerOverrides).toBeUndefined();
  });

  it("creates no Lambda above 3,008 MB by default, and lets the deploy context raise the cap", () => {
    const memory = Object.values(json.Resources)
      .filter((r) => r.Type === "AWS::Lambda::Function")
      .map((r) => Number(r.Properties?.MemorySize ?? 128));
    expect(Math.max(...memory)).toBeLessThanOrEqual(3008);

    // Templates only: no Lambda bundling for these extra stacks (the default stack above bundles).
    const app = new App({
      outdir: tempOutdir(),
      context: { lambdaMemoryMaxMb: "10240", "aws:cdk:bundling-stacks": [] },
    });
    const raised = new RecipePipelineStack(app, "Raised", { settings: settingsFrom(app.node) });
    const raisedMemory = Object.values(Template.fromStack(raised).findResources("AWS::Lambda::Function")).map(
      (r) => Number((r as { Properties: { MemorySize?: number } }).Properties.MemorySize ?? 128),
    );
    expect(Math.max(...raisedMemory)).toBe(10240);
    expect(() =>
      settingsFrom(new App({ outdir: tempOutdir(), context: { lambdaMemoryMaxMb: "lots" } }).node),
    ).toThrow(/lambdaMemoryMaxMb/);
  }, 240_000);

  it("gives GPU hosts the AL2023 NVIDIA AMI and a large encrypted root volume through a launch template", () => {
    const envs = Object.values(template.findResources("AWS::Batch::ComputeEnvironment"));
    // Spot and on-demand for each of the two generate queues, and the training environment.
    expect(envs).toHaveLength(5);
    const [templateId] = Object.keys(template.findResources("AWS::EC2::LaunchTemplate"));
    for (const env of envs) {
      const resources = (env as { Properties: { ComputeResources: Record<string, unknown> } }).Properties
        .ComputeResources;
      expect(resources.Ec2Configuration).toEqual([
        expect.objectContaining({ ImageType: "ECS_AL2023_NVIDIA" }),
      ]);
      // The template's current version, so a changed gpuRootVolumeGiB reaches the hosts (without a
      // version Batch keeps the one it saw when it created the environment).
      expect(resources.LaunchTemplate).toEqual({
        LaunchTemplateId: { Ref: templateId },
        Version: { "Fn::GetAtt": [templateId, "LatestVersionNumber"] },
      });
    }
    template.hasResourceProperties("AWS::EC2::LaunchTemplate", {
      LaunchTemplateData: Match.objectLike({
        BlockDeviceMappings: [
          Match.objectLike({
            DeviceName: "/dev/xvda",
            Ebs: Match.objectLike({ VolumeSize: 1200, VolumeType: "gp3", Encrypted: true }),
          }),
        ],
      }),
    });
  });

  it("ends every job definition's retry rules with a catch-all exit, so exit 1 or 137 is not retried ten times", () => {
    const defs = Object.values(template.findResources("AWS::Batch::JobDefinition"));
    expect(defs.length).toBeGreaterThanOrEqual(2);
    for (const d of defs) {
      const rules = (d as { Properties: { RetryStrategy: { EvaluateOnExit: Record<string, string>[] } } })
        .Properties.RetryStrategy.EvaluateOnExit;
      expect(rules.length).toBeLessThanOrEqual(5); // Batch's limit
      expect(rules.at(-1)).toEqual({ Action: "EXIT", OnExitCode: "*" });
    }
  });

  it("bounds every GPU step: a timeout on each Batch state and RUNNABLE limits on the queue", () => {
    const batchStates = allStates(definition.States as Record<string, State>).filter(
      ([, st]) => st.Resource === "arn:aws:states:::batch:submitJob.sync",
    );
    expect(batchStates.length).toBeGreaterThanOrEqual(3);
    for (const [name, st] of batchStates) expect(st.TimeoutSeconds, name).toBeGreaterThan(0);
    template.hasResourceProperties("AWS::Batch::JobQueue", {
      JobStateTimeLimitActions: Match.arrayWith([
        Match.objectLike({
          Action: "CANCEL",
          State: "RUNNABLE",
          Reason: "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
        }),
      ]),
    });
  });

  it("never loses a run start silently: a dead-letter queue for the trigger and start-run, and an alarm on it", () => {
    const queue = Object.keys(template.findResources("AWS::SQS::Queue")).find((id) =>
      id.startsWith("LostRunStarts"),
    );
    expect(queue).toBeDefined();
    template.hasResourceProperties("AWS::Events::Rule", {
      Targets: [Match.objectLike({ DeadLetterConfig: { Arn: { "Fn::GetAtt": [queue, "Arn"] } } })],
    });
    template.hasResourceProperties("AWS::Lambda::EventInvokeConfig", {
      DestinationConfig: { OnFailure: { Destination: { "Fn::GetAtt": [queue, "Arn"] } } },
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [queue, "QueueName"] } }],
    });
  });

  it("hard-codes no partition in any ARN", () => {
    expect(JSON.stringify(json)).not.toMatch(/"arn:aws:/);
  });
});

describe("SFT training and evaluation jobs (issue 24)", () => {
  const jobDef = (name: string) =>
    Object.entries(json.Resources).find(
      ([, r]) => r.Type === "AWS::Batch::JobDefinition" && r.Properties?.JobDefinitionName === name,
    )!;
  type Submit = {
    Next?: string;
    Parameters: {
      JobQueue: unknown;
      JobDefinition: unknown;
      NodeOverrides?: {
        "NumNodes.$": string;
        NodePropertyOverrides: { ContainerOverrides: { Environment: unknown[] } }[];
      };
      ContainerOverrides?: { Environment: unknown[] };
    };
  };
  const state = (name: string) =>
    allStates(definition.States as Record<string, State>).find(([n]) => n === name)![1];

  it("defines train-sft on one node and on several (open range, NCCL/Gloo interfaces), and evaluate, with the retry rules", () => {
    for (const name of [
      "RecipePipeline-train-sft",
      "RecipePipeline-train-sft-multinode",
      "RecipePipeline-evaluate",
    ]) {
      const [, def] = jobDef(name);
      const retry = def.Properties!.RetryStrategy as {
        Attempts: number;
        EvaluateOnExit: { Action: string; OnExitCode?: string; OnStatusReason?: string }[];
      };
      expect(retry.Attempts, name).toBe(10);
      expect(retry.EvaluateOnExit, name).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ Action: "RETRY", OnStatusReason: "Host EC2*" }),
          expect.objectContaining({ Action: "RETRY", OnExitCode: "75" }),
          expect.objectContaining({ Action: "EXIT", OnExitCode: "3" }),
        ]),
      );
      expect(retry.EvaluateOnExit.at(-1)?.OnExitCode, name).toBe("*");
    }
    const [, mnp] = jobDef("RecipePipeline-train-sft-multinode");
    const nodes = mnp.Properties!.NodeProperties as {
      MainNode: number;
      NodeRangeProperties: {
        TargetNodes: string;
        Container: { Environment: { Name: string; Value: string }[] };
      }[];
    };
    expect(nodes.NodeRangeProperties.map((n) => n.TargetNodes)).toEqual(["0:"]);
    const env = Object.fromEntries(
      nodes.NodeRangeProperties[0]!.Container.Environment.map((e) => [e.Name, e.Value]),
    );
    expect(env.NCCL_SOCKET_IFNAME).toBe(env.GLOO_SOCKET_IFNAME);
    expect(env.NCCL_SOCKET_IFNAME).toMatch(/^\^/);
    for (const name of ["RecipePipeline-train-sft", "RecipePipeline-evaluate"]) {
      const [, def] = jobDef(name);
      expect(
        JSON.stringify(
          (def.Properties!.ContainerProperties as { ResourceRequirements: unknown }).ResourceRequirements,
        ),
      ).toContain('"Type":"GPU","Value":"8"');
    }
  });

  it("trains SFT after write-sft-dataset inside the SFT branch, when the run asks, on the nodes it names", () => {
    const written = state("WriteSftDataset") as { Next?: string };
    expect(written.Next).toBe("TrainSftRequested?");
    const asked = state("TrainSftRequested?") as unknown as {
      Choices: { Variable: string; BooleanEquals: boolean; Next: string }[];
      Default: string;
    };
    expect(asked.Choices[0]).toMatchObject({
      Variable: "$.config.trainSft",
      BooleanEquals: true,
      Next: "TrainSftOnSeveralNodes?",
    });
    expect(asked.Default).toBe("NoTrainSft");
    const several = state("TrainSftOnSeveralNodes?") as unknown as {
      Choices: Record<string, unknown>[];
      Default: string;
    };
    expect(several.Choices[0]).toMatchObject({
      Variable: "$.config.trainSftNodes",
      NumericGreaterThan: 1,
      Next: "TrainSftMultiNode",
    });
    expect(several.Default).toBe("TrainSft");
    const multi = state("TrainSftMultiNode") as unknown as Submit;
    expect(multi.Parameters.NodeOverrides?.["NumNodes.$"]).toBe("$.config.trainSftNodes");
    expect(JSON.stringify(multi.Parameters.NodeOverrides?.NodePropertyOverrides)).toContain(
      '"Value":"train-sft"',
    );
    expect(JSON.stringify(multi.Parameters.JobQueue)).toContain("job-queue/RecipePipeline-train-multinode");
    const single = state("TrainSft") as unknown as Submit;
    expect(JSON.stringify(single.Parameters.ContainerOverrides)).toContain('"Value":"train-sft"');
    expect(JSON.stringify(single.Parameters.JobQueue)).toContain("job-queue/RecipePipeline-gpu-large");
    // The SFT branch is one of the Parallel's: RL training, after the Parallel, waits for it.
    const parallel = state("SftAndRl") as { Next?: string; Branches?: { States: Record<string, State> }[] };
    expect(parallel.Next).toBe("TrainRequested?");
    expect(Object.keys(parallel.Branches![0]!.States)).toEqual(
      expect.arrayContaining(["TrainSft", "TrainSftMultiNode"]),
    );
  });

  it("evaluates after RL training, when the run asks, then reports", () => {
    for (const before of ["TrainRl", "TrainRlMultiNode", "NoTraining"])
      expect((state(before) as { Next?: string }).Next, before).toBe("EvaluateRequested?");
    const asked = state("EvaluateRequested?") as unknown as {
      Choices: { Variable: string; BooleanEquals: boolean; Next: string }[];
      Default: string;
    };
    expect(asked.Choices[0]).toMatchObject({
      Variable: "$.config.evaluate",
      BooleanEquals: true,
      Next: "Evaluate",
    });
    expect(asked.Default).toBe("NoEvaluation");
    const evaluate = state("Evaluate") as unknown as Submit;
    expect(evaluate.Next).toBe("Report");
    expect((state("NoEvaluation") as { Next?: string }).Next).toBe("Report");
    expect(JSON.stringify(evaluate.Parameters.ContainerOverrides)).toContain('"Value":"evaluate"');
    expect(JSON.stringify(evaluate.Parameters.JobQueue)).toContain("job-queue/RecipePipeline-gpu-large");
  });

  it("gives train-sft and evaluate roles of their own with only their stage's keys (the local IAM decides)", () => {
    const account = new LocalAccount(json as never);
    const ref = localRef(json as never);
    const role = (name: string) => account.jobPrincipal(ref(jobDef(name)[0]));
    const obj = (key: string) => `arn:aws:s3:::recipe-local/${key}`;
    const sft = role("RecipePipeline-train-sft");
    expect(role("RecipePipeline-train-sft-multinode").arn).toBe(sft.arn);
    expect(sft.arn).not.toBe(role("RecipePipeline-train-rl").arn);
    for (const key of [
      "runs/r1/config.json",
      "runs/r1/write-sft-dataset/_SUCCESS",
      "runs/r1/datasets/sft/lmms-engine/sft-00000.parquet",
      "runs/r1/datasets/sft/images/ab.png",
      "images/ab/cd.png",
      "models/Qwen2.5-VL-7B-Instruct/config.json",
      "runs/r1/train-sft/checkpoints/2000/_COMPLETE",
    ])
      expect(account.allows(sft, "s3:GetObject", obj(key)), key).toBe(true);
    for (const key of [
      "runs/r1/train-sft/checkpoints/2000/model.safetensors",
      "runs/r1/train-sft/_SUCCESS",
      "runs/r1/models/sft/config.json",
    ])
      expect(account.allows(sft, "s3:PutObject", obj(key)), key).toBe(true);
    for (const key of [
      "runs/r1/models/rl/config.json",
      "runs/r1/datasets/sft/sft.jsonl.gz",
      "runs/r1/eval/sft/x.json",
      "cache/generate/ab.json.gz",
    ])
      expect(account.allows(sft, "s3:PutObject", obj(key)), key).toBe(false);
    expect(account.allows(sft, "s3:GetObject", obj("cache/generate/ab.json.gz"))).toBe(false);
    expect(account.allows(sft, "s3:DeleteObject", obj("runs/r1/train-sft/_SUCCESS"))).toBe(false);

    const evaluate = role("RecipePipeline-evaluate");
    for (const key of [
      "runs/r1/config.json",
      "runs/r1/models/sft/config.json",
      "runs/r1/models/rl/model.safetensors",
    ])
      expect(account.allows(evaluate, "s3:GetObject", obj(key)), key).toBe(true);
    for (const key of [
      "runs/r1/eval/rl/mathvista_testmini.json",
      "runs/r1/eval/rl/mathvista_testmini.samples.jsonl.gz",
      "runs/r1/evaluate/_SUCCESS",
    ])
      expect(account.allows(evaluate, "s3:PutObject", obj(key)), key).toBe(true);
    for (const key of [
      "runs/r1/models/sft/config.json",
      "runs/r1/train-sft/_SUCCESS",
      "runs/r1/datasets/rl/train.parquet",
    ])
      expect(account.allows(evaluate, "s3:PutObject", obj(key)), key).toBe(false);
    expect(account.allows(evaluate, "s3:GetObject", obj("runs/r1/datasets/sft/sft.jsonl.gz"))).toBe(false);
  });

  it("with judgeApiKeySecretArn, the evaluate job gets the judge's key as a Batch secret, and no job role may read it", () => {
    const arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:judge-AbCdEf";
    const app = new App({
      outdir: tempOutdir(),
      context: {
        judgeApiKeySecretArn: arn,
        judgeEndpointHost: "judge.example.com",
        "aws:cdk:bundling-stacks": [],
      },
    });
    const t = Template.fromStack(
      new RecipePipelineStack(app, "WithJudge", { settings: settingsFrom(app.node) }),
    ).toJSON() as typeof json;
    const defs = Object.entries(t.Resources).filter(([, r]) => r.Type === "AWS::Batch::JobDefinition");
    const withKey = defs.filter(([, r]) => JSON.stringify(r.Properties).includes("RECIPE_JUDGE_API_KEY"));
    expect(withKey.map(([, r]) => r.Properties!.JobDefinitionName)).toEqual(["WithJudge-evaluate"]);
    const container = withKey[0]![1].Properties!.ContainerProperties as {
      Secrets: { Name: string; ValueFrom: unknown }[];
      Environment: { Name: string; Value: unknown }[];
    };
    expect(container.Secrets).toEqual([{ Name: "RECIPE_JUDGE_API_KEY", ValueFrom: arn }]);
    expect(container.Environment).toContainEqual({
      Name: "RECIPE_JUDGE_KEY_HOST",
      Value: "judge.example.com",
    });
    const account = new LocalAccount(t as never);
    const ref = localRef(t as never);
    for (const [id] of defs)
      expect(account.allows(account.jobPrincipal(ref(id)), "secretsmanager:GetSecretValue", arn), id).toBe(
        false,
      );
  }, 240_000);
});

describe("hosted endpoints and run settings on AWS (issue 12)", () => {
  const env = (name: string) =>
    Object.fromEntries(
      (
        ((
          allStates(definition.States as Record<string, State>).find(([n]) => n === name)![1].Parameters as {
            ContainerOverrides: { Environment: Record<string, string>[] };
          }
        ).ContainerOverrides.Environment ?? []) as Record<string, string>[]
      ).map((e) => [e.Name, e["Value.$"] ?? e.Value]),
    );

  it("passes the teacher's serving and endpoint to the distill job, and always serves rollouts in the job", () => {
    for (const name of ["DistillArray", "DistillSingle"]) {
      expect(env(name)).toMatchObject({
        RECIPE_SERVING: "$.config.teacherServing",
        OPENAI_BASE_URL: "$.config.teacherUrl",
      });
    }
    expect(env("RolloutsArray").RECIPE_SERVING).toBe("batch");
  });

  it("bounds each attempt of the generate jobs by batch.jobTimeoutHours from the run", () => {
    for (const name of ["DistillArray", "DistillSingle", "RolloutsArray", "RolloutsSingle"]) {
      const state = allStates(definition.States as Record<string, State>).find(([n]) => n === name)![1];
      expect((state.Parameters as Record<string, unknown>).Timeout, name).toEqual({
        "AttemptDurationSeconds.$": "$.config.jobTimeoutSeconds",
      });
    }
  });

  it("with judgeApiKeySecretArn, only verify-shard may read the judge's key, and it is told where", () => {
    const arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:judge-AbCdEf";
    const app = new App({
      outdir: tempOutdir(),
      context: {
        judgeApiKeySecretArn: arn,
        judgeEndpointHost: "judge.example.com",
        "aws:cdk:bundling-stacks": [],
      },
    });
    const withJudge = Template.fromStack(
      new RecipePipelineStack(app, "WithJudge", { settings: settingsFrom(app.node) }),
    );
    const fns = withJudge.findResources("AWS::Lambda::Function") as Record<
      string,
      { Properties: { Environment?: { Variables?: Record<string, unknown> } } }
    >;
    const told = Object.keys(fns).filter(
      (id) => fns[id]!.Properties.Environment?.Variables?.RECIPE_JUDGE_API_KEY_SECRET_ARN === arn,
    );
    expect(told.length).toBe(1);
    expect(told[0]).toMatch(/^StepverifyshardFn/);
    const account = new LocalAccount(withJudge.toJSON() as never);
    const verifyArn = `arn:aws:lambda:us-east-1:000000000000:function:${told[0]}`;
    expect(account.allows(account.functionPrincipal(verifyArn), "secretsmanager:GetSecretValue", arn)).toBe(
      true,
    );
    for (const id of Object.keys(fns).filter((k) => k.startsWith("Step") && k !== told[0]))
      expect(
        account.allows(
          account.functionPrincipal(`arn:aws:lambda:us-east-1:000000000000:function:${id}`),
          "secretsmanager:GetSecretValue",
          arn,
        ),
        id,
      ).toBe(false);
  }, 240_000);
});

describe("alarm email under KMS (issue 12)", () => {
  it("encrypts the topic with a key CloudWatch may use for this account only, and no key lets EventBridge in unconditioned", () => {
    const app = new App({
      outdir: tempOutdir(),
      context: { alarmEmail: "ops@example.com", "aws:cdk:bundling-stacks": [] },
    });
    const emailStack = new RecipePipelineStack(app, "WithEmail", { settings: settingsFrom(app.node) });
    acknowledgeNagFindings(emailStack, new cdkNag.AwsSolutionsChecks());
    const withEmail = Template.fromStack(emailStack);
    // cdk-nag passes with alarmEmail too (cdk synth fails on an unacknowledged finding).
    const unacknowledged = new cdkNag.AwsSolutionsChecks()
      .validateScope(emailStack)
      .violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(",")}`);
    expect(unacknowledged).toEqual([]);
    const keys = Object.values(withEmail.findResources("AWS::KMS::Key")) as {
      Properties: { KeyPolicy: { Statement: { Principal?: { Service?: string }; Condition?: unknown }[] } };
    }[];
    const statements = keys.flatMap((k) => k.Properties.KeyPolicy.Statement);
    const cloudwatch = statements.find((st) => st.Principal?.Service === "cloudwatch.amazonaws.com");
    expect(cloudwatch?.Condition).toEqual({ StringEquals: { "aws:SourceAccount": expect.anything() } });
    const events = statements.filter((st) => st.Principal?.Service === "events.amazonaws.com");
    for (const st of events) expect(st.Condition).toBeDefined();
    withEmail.hasResourceProperties("AWS::SNS::Topic", { KmsMasterKeyId: Match.anyValue() });
  }, 240_000);
});

describe("operations", () => {
  it("alarms on failed and timed-out executions and failed Batch jobs", () => {
    const alarms = Object.values(json.Resources).filter((r) => r.Type === "AWS::CloudWatch::Alarm");
    const names = alarms.map((a) =>
      String(a.Properties?.MetricName ?? JSON.stringify(a.Properties?.Metrics ?? "")),
    );
    expect(names).toEqual(
      expect.arrayContaining(["ExecutionsFailed", "ExecutionsTimedOut", "BatchJobsFailed"]),
    );
    template.resourceCountIs("AWS::CloudWatch::Dashboard", 1);
  });
});

describe("cdk-nag and bundles", () => {
  it("has zero unacknowledged AwsSolutions findings", () => {
    const report = new cdkNag.AwsSolutionsChecks().validateScope(stack);

    expect(
      report.violations.map(
        (v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath).join(",")}`,
      ),
    ).toEqual([]);
  });

  it("keeps every Lambda bundle at or under 1 MB", () => {
    const sizes = readdirSync(outdir)
      .filter((d) => d.startsWith("asset."))
      .flatMap((d) => {
        try {
          return [[d, statSync(join(outdir, d, "index.mjs")).size] as const];
        } catch {
          return [];
        }
      });
    console.log(`[bundles] ${sizes.map(([, s]) => `${Math.round(s / 1024)}K`).join(" ")}`);
    expect(sizes.length).toBeGreaterThanOrEqual(14);
    for (const [d, s] of sizes) expect(s, d).toBeLessThanOrEqual(1024 * 1024);
  });
});
