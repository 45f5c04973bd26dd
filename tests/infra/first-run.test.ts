/**
 * A new AWS account's first run of the published recipe (issue 25), read from the synthesized
 * template: GPU queues that hold their models, Maps under the account's Lambda concurrency, a region
 * in every container, pulls of prebuilt ECR images, the published training's vCPUs and AZ, keys bound
 * to hosts, alarms on every queue, role policy sizes, launch template versions.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODEL_WEIGHT_GB } from "../../core/generate/fit.ts";
import { queueFor } from "../../core/generate/queues.ts";
import { settingsFrom } from "../../infra/config.ts";
import { RecipePipelineStack } from "../../infra/stack.ts";
import { resolveTokens, stateMachineDefinition, type TemplateLike } from "../../local/definition.ts";
import { LocalAccount } from "../../local/iam/account.ts";

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;
type State = Record<string, unknown> & {
  Type: string;
  States?: Record<string, State>;
  Branches?: { States: Record<string, State> }[];
  ItemProcessor?: { States: Record<string, State> };
};

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

/** A stack's template, synthesized without bundling, with deploy settings as `-c` would give them. */
function synth(context: Record<string, string> = {}, id = "RecipePipeline"): TemplateLike {
  const outdir = mkdtempSync(join(tmpdir(), "cdk-out-"));
  outdirs.push(outdir);
  const app = new App({
    outdir,
    context: {
      "aws:cdk:bundling-stacks": [],
      "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2": true,
      ...context,
    },
  });
  return Template.fromStack(
    new RecipePipelineStack(app, id, { settings: settingsFrom(app.node) }),
  ).toJSON() as TemplateLike;
}

function allStates(states: Record<string, State>): [string, State][] {
  return Object.entries(states).flatMap(([name, s]) => [
    [name, s] as [string, State],
    ...(s.Branches ?? []).flatMap((b) => allStates(b.States)),
    ...(s.ItemProcessor ? allStates(s.ItemProcessor.States) : []),
  ]);
}

let json: TemplateLike;
let resources: Resources;
let states: [string, State][];
beforeAll(() => {
  json = synth();
  resources = json.Resources as Resources;
  states = allStates(stateMachineDefinition(json).States as Record<string, State>);
}, 240_000);

const of = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const queueNamed = (name: string) =>
  of("AWS::Batch::JobQueue").find(([, r]) => r.Properties?.JobQueueName === name)![1];
/** The instance types of each compute environment of a queue. */
function queueTypes(name: string): string[][] {
  const order = queueNamed(name).Properties!.ComputeEnvironmentOrder as {
    ComputeEnvironment: { "Fn::GetAtt"?: string[]; Ref?: string };
  }[];
  return order.map((o) => {
    const id = o.ComputeEnvironment["Fn::GetAtt"]?.[0] ?? o.ComputeEnvironment.Ref!;
    return (resources[id]!.Properties!.ComputeResources as { InstanceTypes: string[] }).InstanceTypes;
  });
}
const validateEnv = () =>
  (
    of("AWS::Lambda::Function").find(([id]) => id.startsWith("StepvalidateconfigFn"))![1].Properties!
      .Environment as { Variables: Record<string, unknown> }
  ).Variables;

describe("1. GPU queues that hold their models", () => {
  it("deploys a large queue whose every instance type holds the published teacher, and a small one for the policy", () => {
    const large = queueTypes("RecipePipeline-gpu-large");
    const small = queueTypes("RecipePipeline-gpu-small");

    expect(large).toEqual([["p5.48xlarge"], ["p5.48xlarge"]]);
    expect(small).toEqual([["g6e.48xlarge"], ["g6e.48xlarge"]]);
    // Batch starts whichever type is cheapest: no type of the teacher's queue may be too small for it.
    const queues = [
      { size: "small" as const, queue: "S", instanceTypes: small[0]! },
      { size: "large" as const, queue: "L", instanceTypes: large[0]! },
    ];
    expect(queueFor("Qwen/Qwen3-VL-235B-A22B-Instruct", queues)).toEqual({ queue: queues[1] });
    expect(queueFor("Qwen/Qwen2.5-VL-7B-Instruct", queues)).toEqual({ queue: queues[0] });
    expect(MODEL_WEIGHT_GB["Qwen/Qwen3-VL-235B-A22B-Instruct"]).toBeGreaterThan(400);
  });

  it("submits each generate job to the queue validate-config picked for its model, and tells it the deployed queues", () => {
    const queueOf = (name: string) =>
      states.find(([n]) => n === name)![1].Parameters as Record<string, unknown>;
    for (const n of ["DistillArray", "DistillSingle"])
      expect(queueOf(n)["JobQueue.$"]).toBe("$.config.teacherQueue");
    for (const n of ["RolloutsArray", "RolloutsSingle"])
      expect(queueOf(n)["JobQueue.$"]).toBe("$.config.policyQueue");
    const env = validateEnv();
    expect(env.RECIPE_GPU_QUEUE_LARGE_TYPES).toBe("p5.48xlarge");
    expect(env.RECIPE_GPU_QUEUE_SMALL_TYPES).toBe("g6e.48xlarge");
    expect(JSON.stringify(env.RECIPE_GPU_QUEUE_LARGE)).toContain(":job-queue/RecipePipeline-gpu-large");
    expect(JSON.stringify(env.RECIPE_GPU_QUEUE_SMALL)).toContain(":job-queue/RecipePipeline-gpu-small");
  });

  it("refuses deploy settings a generate job could never be placed on, or the old single list, naming the setting", () => {
    expect(() => synth({ smallInstanceTypes: "g6e.12xlarge" }, "Four")).toThrow(
      /smallInstanceTypes: g6e.12xlarge has 4 GPUs, fewer than gpusPerJob \(8\)/,
    );
    expect(() => synth({ instanceTypes: "p5.48xlarge" }, "Old")).toThrow(/largeInstanceTypes/);
  });
});

describe("2. Lambda concurrency", () => {
  it("caps every Distributed Map with the concurrency validate-config computes, and lets it read the account's", () => {
    const maps = states.filter(([, s]) => s.Type === "Map");
    expect(maps.length).toBeGreaterThan(5);
    for (const [name, s] of maps) expect(s.MaxConcurrencyPath, name).toBe("$.config.mapMaxConcurrency");
    const account = new LocalAccount(json);
    const [fnId] = of("AWS::Lambda::Function").find(([id]) => id.startsWith("StepvalidateconfigFn"))!;
    const principal = account.functionPrincipal(`arn:aws:lambda:us-east-1:000000000000:function:${fnId}`);
    expect(account.allows(principal, "lambda:GetAccountSettings", "*")).toBe(true);
  });

  it("retries a throttled Lambda task longer, on average, than any stage Lambda may run", () => {
    const longest = Math.max(
      ...of("AWS::Lambda::Function")
        .filter(([id]) => id.startsWith("Step"))
        .map(([, r]) => Number(r.Properties!.Timeout)),
    );
    expect(longest).toBe(900);
    const lambdaTasks = states.filter(
      ([, s]) => s.Type === "Task" && String(s.Resource).includes(":lambda:"),
    );
    expect(lambdaTasks.length).toBeGreaterThan(20);
    for (const [name, s] of lambdaTasks) {
      const retry = (s.Retry as Record<string, unknown>[]).find((r) =>
        (r.ErrorEquals as string[]).includes("Lambda.TooManyRequestsException"),
      )!;
      expect(retry, name).toBeDefined();
      let nominal = 0;
      for (let i = 0; i < Number(retry.MaxAttempts); i++)
        nominal += Math.min(
          Number(retry.IntervalSeconds) * Number(retry.BackoffRate) ** i,
          Number(retry.MaxDelaySeconds ?? Number.POSITIVE_INFINITY),
        );
      // Full jitter: each wait is uniform in [0, interval], half of it on average.
      const average = retry.JitterStrategy === "FULL" ? nominal / 2 : nominal;
      expect(average, name).toBeGreaterThan(longest);
    }
  });
});

describe("3. a region in every container", () => {
  it("gives every job definition the stack's region as AWS_REGION and AWS_DEFAULT_REGION", () => {
    const defs = of("AWS::Batch::JobDefinition");
    // generate, train-rl (one node, several), train-sft (one node, several), evaluate.
    expect(defs).toHaveLength(6);
    for (const [id, d] of defs) {
      const p = d.Properties!;
      const container = (p.ContainerProperties ??
        (p.NodeProperties as { NodeRangeProperties: { Container: unknown }[] }).NodeRangeProperties[0]!
          .Container) as { Environment: { Name: string; Value: unknown }[] };
      const env = Object.fromEntries(container.Environment.map((e) => [e.Name, e.Value]));
      expect(env.AWS_REGION, id).toEqual({ Ref: "AWS::Region" });
      expect(env.AWS_DEFAULT_REGION, id).toEqual({ Ref: "AWS::Region" });
    }
  });
});

describe("4. prebuilt images", () => {
  it("lets the execution role pull an ECR image given by URI", () => {
    const uri = "111122223333.dkr.ecr.us-west-2.amazonaws.com/recipe/generate:v1";
    const t = synth({ generateImageUri: uri, trainImageUri: "public.ecr.aws/x/train:1" }, "Prebuilt");
    const account = new LocalAccount(t);
    const generate = Object.values(t.Resources).find(
      (r) =>
        r.Type === "AWS::Batch::JobDefinition" && r.Properties?.JobDefinitionName === "Prebuilt-generate",
    )!;
    const props = generate.Properties!.ContainerProperties as { Image: unknown; ExecutionRoleArn: unknown };
    expect(
      JSON.stringify(resolveTokens(props.Image, (id) => (id === "AWS::URLSuffix" ? "amazonaws.com" : "x"))),
    ).toContain("dkr.ecr.us-west-2.amazonaws.com/recipe/generate:v1");
    const roleId = (props.ExecutionRoleArn as { "Fn::GetAtt": string[] })["Fn::GetAtt"][0]!;
    const role = account.roles.get(roleId)!;
    const repo = "arn:aws:ecr:us-west-2:111122223333:repository/recipe/generate";
    for (const action of [
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
      "ecr:BatchCheckLayerAvailability",
    ])
      expect(account.allows(role, action, repo), action).toBe(true);
    expect(account.allows(role, "ecr:GetAuthorizationToken", "*")).toBe(true);
    expect(
      account.allows(role, "ecr:BatchGetImage", "arn:aws:ecr:us-west-2:111122223333:repository/other"),
    ).toBe(false);
  });
});

describe("5. the published recipe's training", () => {
  it("sizes the training environment for 8 x p5.48xlarge (1,536 vCPUs)", () => {
    const [ce] = queueTypes("RecipePipeline-train-multinode");
    expect(ce).toEqual(["p5.48xlarge"]);
    const order = queueNamed("RecipePipeline-train-multinode").Properties!.ComputeEnvironmentOrder as {
      ComputeEnvironment: { "Fn::GetAtt"?: string[]; Ref?: string };
    }[];
    const id = order[0]!.ComputeEnvironment["Fn::GetAtt"]?.[0] ?? order[0]!.ComputeEnvironment.Ref!;
    expect((resources[id]!.Properties!.ComputeResources as { MaxvCpus: number }).MaxvCpus).toBe(1536);
    expect(() => synth({ trainMaxVcpus: "1024" }, "Small")).toThrow(/trainMaxVcpus \(1024\).*8 x 192 = 1536/);
  });

  it("puts the training environment in the Availability Zone the deploy names", () => {
    const t = synth({ trainAvailabilityZone: "us-east-1d" }, "InAz");
    const train = Object.values(t.Resources).find(
      (r) =>
        r.Type === "AWS::Batch::ComputeEnvironment" &&
        r.Properties?.ComputeResources &&
        JSON.stringify(r.Properties).includes("PlacementGroup"),
    )!;
    const subnets = (train.Properties!.ComputeResources as { Subnets: { Ref: string }[] }).Subnets;
    expect(subnets).toHaveLength(1);
    expect(t.Resources[subnets[0]!.Ref]!.Properties!.AvailabilityZone).toBe("us-east-1d");
  });
});

describe("6. keys bound to hosts", () => {
  it("refuses a key without the host it may be sent to, and tells validate-config the host", () => {
    const arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:teacher-AbCdEf";
    expect(() => synth({ teacherApiKeySecretArn: arn }, "NoHost")).toThrow(
      /teacherApiKeySecretArn needs teacherEndpointHost/,
    );
    const t = synth({ teacherApiKeySecretArn: arn, teacherEndpointHost: "api.example.com" }, "Bound");
    const fn = Object.entries(t.Resources).find(
      ([id, r]) => r.Type === "AWS::Lambda::Function" && id.startsWith("StepvalidateconfigFn"),
    )![1];
    expect(
      (fn.Properties!.Environment as { Variables: Record<string, unknown> }).Variables
        .RECIPE_TEACHER_KEY_HOST,
    ).toBe("api.example.com");
    // Only the generate job gets the teacher's key, not the training jobs.
    const defs = Object.values(t.Resources).filter((r) => r.Type === "AWS::Batch::JobDefinition");
    const keyed = defs.filter((d) => JSON.stringify(d.Properties).includes("OPENAI_API_KEY"));
    expect(keyed.map((d) => d.Properties!.JobDefinitionName)).toEqual(["Bound-generate"]);
  });
});

describe("7. operations and limits", () => {
  it("alarms on failed jobs of every queue, the multi-node one included", () => {
    const rules = of("AWS::Events::Rule").filter(([, r]) =>
      JSON.stringify(r.Properties?.EventPattern).includes("Batch Job State Change"),
    );
    expect(rules.length).toBeGreaterThan(0);
    const queues = of("AWS::Batch::JobQueue").map(([id]) => id);
    expect(queues).toHaveLength(3);
    for (const [id, r] of rules) {
      const named = JSON.stringify(
        (r.Properties!.EventPattern as { detail: { jobQueue: unknown } }).detail.jobQueue,
      );
      for (const q of queues) expect(named, id).toContain(`"${q}"`);
    }
  });

  it("alarms when a GPU job blocks its queue in RUNNABLE, and sends Batch's event with its reason to the alarm email", () => {
    const blocked = of("AWS::Events::Rule").filter(([, r]) =>
      JSON.stringify(r.Properties?.EventPattern).includes("Batch Job Queue Blocked"),
    );
    expect(blocked).toHaveLength(1);
    const queues = of("AWS::Batch::JobQueue").map(([id]) => id);
    for (const q of queues)
      expect(JSON.stringify(blocked[0]![1].Properties!.EventPattern)).toContain(`"${q}"`);
    const alarm = of("AWS::CloudWatch::Alarm").find(
      ([, r]) => r.Properties?.MetricName === "GpuQueueBlocked",
    );
    expect(String(alarm![1].Properties!.AlarmDescription)).toContain("statusReason");

    const withEmail = synth({ alarmEmail: "ops@example.com" }, "Mailed");
    const notify = Object.values(withEmail.Resources).filter(
      (r) =>
        r.Type === "AWS::Events::Rule" &&
        JSON.stringify(r.Properties?.EventPattern).includes("Batch Job Queue Blocked") &&
        JSON.stringify(r.Properties?.Targets).includes("Alarms"),
    );
    expect(notify).toHaveLength(1);
  });

  it("keeps every role's inline policies under IAM's 10,240 characters with room to grow, and each managed policy under 6,144", () => {
    // Sizes as IAM counts them (no whitespace), with every reference resolved to a long ARN: the
    // template's tokens are shorter than what CloudFormation puts there.
    const long = (id: string) =>
      id === "AWS::Region"
        ? "ap-southeast-2"
        : id === "AWS::AccountId"
          ? "111122223333"
          : id === "AWS::Partition"
            ? "aws"
            : `arn:aws:lambda:ap-southeast-2:111122223333:function:${"x".repeat(64)}`;
    const size = (doc: unknown) => JSON.stringify(resolveTokens(doc, long)).replace(/\s/g, "").length;
    const inline = new Map<string, number>();
    for (const [id, r] of of("AWS::IAM::Role"))
      inline.set(
        id,
        ((r.Properties!.Policies ?? []) as { PolicyDocument: unknown }[]).reduce(
          (a, p) => a + size(p.PolicyDocument),
          0,
        ),
      );
    for (const [, r] of of("AWS::IAM::Policy"))
      for (const role of (r.Properties!.Roles ?? []) as { Ref: string }[])
        inline.set(role.Ref, (inline.get(role.Ref) ?? 0) + size(r.Properties!.PolicyDocument));
    for (const [id, r] of of("AWS::IAM::ManagedPolicy"))
      expect(size(r.Properties!.PolicyDocument), id).toBeLessThanOrEqual(6144);
    // Room for several more steps: each adds a ~120-character invoke ARN pair to the state machine's.
    for (const [role, chars] of inline) expect(chars, role).toBeLessThanOrEqual(8192);
    expect(Math.max(...inline.values())).toBeGreaterThan(2000);
  });
});
