/**
 * AWS Batch for the GPU jobs: two right-sized generate queues, each with managed EC2 compute
 * environments (spot, then on-demand) of its own GPU instance types: the large queue (p5 class) for
 * the teacher, the small one (g6e class) for the policy's rollouts; Batch starts whichever of a
 * queue's types is cheapest, so a queue's types must all hold the model sent to it
 * (core/generate/queues.ts picks the queue per run). Multi-node training has its own on-demand queue
 * in one Availability Zone. Job definitions for `generate`, `train-sft`, `train-rl` and `evaluate`
 * carry the container contract's retry rules: spot reclaim (`Host EC2*`) and exit 75 retry, exit 3
 * fails at once. train-sft and evaluate run as roles of their own, with only their stage's keys.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Annotations, Duration, Size, Stack, Token } from "aws-cdk-lib";
import * as batch from "aws-cdk-lib/aws-batch";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecr from "aws-cdk-lib/aws-ecr";
import { Platform } from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import * as secrets from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import type { QueueSize } from "../../core/generate/queues.ts";
import { DEFAULT_SOCKET_IFNAME } from "../../core/train/cluster.ts";
import { PROJECT_ROOT } from "../root.ts";

export interface GpuBatchProps {
  readonly bucket: s3.IBucket;
  readonly key?: kms.IKey;
  readonly vpcId?: string;
  /** Instance types of each generate queue. */
  readonly queueInstanceTypes: Record<QueueSize, string[]>;
  /** Max vCPUs of each generate compute environment. */
  readonly maxVcpus: number;
  readonly trainInstanceTypes: string[];
  /** Max vCPUs of the multi-node training environment (nodes x vCPUs per node). */
  readonly trainMaxVcpus: number;
  /** The training environment's Availability Zone. @default the first private subnet's */
  readonly trainAvailabilityZone?: string;
  readonly gpusPerJob: number;
  /** An image URI (ECR or public), or undefined to build batch-images/<name> as a Docker asset. */
  readonly generateImageUri?: string;
  readonly trainImageUri?: string;
  readonly sftImageUri?: string;
  readonly evalImageUri?: string;
  readonly teacherApiKeySecretArn?: string;
  /** A hosted judge's key: the evaluate job scores undecided answers with it, as verify-shard does. */
  readonly judgeApiKeySecretArn?: string;
  /** The one host the judge's key may be sent to (the evaluate job checks it again). */
  readonly judgeEndpointHost?: string;
  /** The one host the teacher's key may be sent to (the generate job checks it again). */
  readonly teacherEndpointHost?: string;
  readonly sourceBuckets: string[];
  /** Root volume of each GPU host (images, weights, checkpoints). */
  readonly rootVolumeGiB: number;
  /** How long a job may wait RUNNABLE (no capacity, no quota) before the queue cancels it. */
  readonly runnableTimeout: Duration;
}

/**
 * The queue's and job definitions' names, after the stack (unique per account and region), so the
 * state machine's Batch policy can name them as literals: CDK's own name attributes are derived from
 * the resources' ARNs, and a policy built from those needs Batch to deploy at all (LocalStack has none).
 */
export function batchNames(stack: Stack): {
  queues: Record<QueueSize, string>;
  generate: string;
  train: string;
  trainQueue: string;
  trainMultiNode: string;
  trainSft: string;
  trainSftMultiNode: string;
  evaluate: string;
} {
  const prefix = stack.stackName;
  return {
    queues: { large: `${prefix}-gpu-large`, small: `${prefix}-gpu-small` },
    generate: `${prefix}-generate`,
    train: `${prefix}-train-rl`,
    trainQueue: `${prefix}-train-multinode`,
    trainMultiNode: `${prefix}-train-rl-multinode`,
    trainSft: `${prefix}-train-sft`,
    trainSftMultiNode: `${prefix}-train-sft-multinode`,
    evaluate: `${prefix}-evaluate`,
  };
}

/**
 * The state machine's name, after the stack like the Batch names: one stack per account and region
 * would otherwise be the limit (a fixed name cannot be created twice).
 */
export function stateMachineName(stackName: string): string {
  return `${stackName}-run`;
}

/** The ECR repository an image URI names (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:tag|@digest]`). */
export function ecrImage(uri: string): { account: string; region: string; repo: string; tag: string } | null {
  const m =
    /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([^:@]+)(?:[:@](.+))?$/.exec(uri);
  return m ? { account: m[1]!, region: m[2]!, repo: m[3]!, tag: m[4] ?? "latest" } : null;
}

export class GpuBatch extends Construct {
  /** The generate queues: large (the teacher) and small (the policy's rollouts). */
  readonly queues: Record<QueueSize, batch.JobQueue>;
  readonly generateJob: batch.EcsJobDefinition;
  readonly trainJob: batch.EcsJobDefinition;
  /** Training on more than one node: a multi-node parallel job, on its own on-demand queue. */
  readonly trainMultiNodeJob: batch.MultiNodeJobDefinition;
  readonly trainQueue: batch.JobQueue;
  /** SFT (lmms-engine) on one node, and on several as a multi-node parallel job on trainQueue. */
  readonly trainSftJob: batch.EcsJobDefinition;
  readonly trainSftMultiNodeJob: batch.MultiNodeJobDefinition;
  /** Evaluation (lmms-eval against vLLM in the job) of the run's models. */
  readonly evaluateJob: batch.EcsJobDefinition;
  readonly vpc: ec2.IVpc;
  /** Every compute environment, by id (Spot/OnDemand per queue, TrainOnDemand). */
  readonly environments: Record<string, batch.ManagedEc2EcsComputeEnvironment> = {};

  constructor(scope: Construct, id: string, props: GpuBatchProps) {
    super(scope, id);
    const stack = Stack.of(this);
    for (const [size, types] of Object.entries(props.queueInstanceTypes))
      if (types.length === 0) throw new Error(`GpuBatch: the ${size} queue needs at least one instance type`);
    const trainAz = props.trainAvailabilityZone;
    this.vpc = props.vpcId
      ? ec2.Vpc.fromLookup(this, "Vpc", { vpcId: props.vpcId })
      : new ec2.Vpc(this, "Vpc", {
          // A training AZ given: the VPC spans it (and, where the region's AZs are known, two more).
          ...(trainAz
            ? {
                availabilityZones: Token.isUnresolved(stack.region)
                  ? [trainAz]
                  : [trainAz, ...stack.availabilityZones.filter((z) => z !== trainAz)].slice(0, 3),
              }
            : { maxAzs: 3 }),
          natGateways: 1,
          subnetConfiguration: [
            { name: "public", subnetType: ec2.SubnetType.PUBLIC },
            { name: "gpu", subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
          ],
          gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
          flowLogs: { all: { trafficType: ec2.FlowLogTrafficType.REJECT } },
        });
    // The AMI's own root volume is small and shared with Docker: a 235B teacher's weights (~470 GB),
    // the images and verl checkpoints need a large encrypted gp3 root volume.
    const launchTemplate = new ec2.LaunchTemplate(this, "HostDisk", {
      blockDevices: [
        {
          deviceName: "/dev/xvda",
          volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGiB, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
            throughput: 1000,
            iops: 16000,
          }),
        },
      ],
      requireImdsv2: true,
    });
    const privateSubnets = this.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnets;
    // A cluster placement group lives in one Availability Zone: the training environment uses one
    // subnet, in the AZ the deploy names (one that offers the train instance types) or the first.
    const trainSubnet = trainAz
      ? privateSubnets.find(
          (sn) => !Token.isUnresolved(sn.availabilityZone) && sn.availabilityZone === trainAz,
        )
      : privateSubnets[0];
    if (!trainAz)
      Annotations.of(this).addWarningV2(
        "recipe:trainAvailabilityZone",
        "The multi-node training environment is in the first private subnet's Availability Zone, which may not offer its instance types: name one that does with -c trainAvailabilityZone=<az> (aws ec2 describe-instance-type-offerings --location-type availability-zone --filters Name=instance-type,Values=p5.48xlarge)",
      );
    if (!trainSubnet)
      throw new Error(
        `context trainAvailabilityZone: no private subnet of the VPC is in ${trainAz} (its private subnets are in ${privateSubnets.map((sn) => sn.availabilityZone).join(", ")})`,
      );
    const environment = (
      name: string,
      spot: boolean,
      types: string[],
      maxVcpus: number,
      placement?: ec2.IPlacementGroup,
    ) => {
      const env = new batch.ManagedEc2EcsComputeEnvironment(this, name, {
        vpc: this.vpc,
        vpcSubnets: placement
          ? { subnets: [trainSubnet] }
          : { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        placementGroup: placement,
        spot,
        instanceTypes: types.map((t) => new ec2.InstanceType(t)),
        useOptimalInstanceClasses: false,
        minvCpus: 0,
        maxvCpus: maxVcpus,
        allocationStrategy: spot
          ? batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
          : batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
        // ECS_AL2_NVIDIA reached end of life on 2026-06-30.
        images: [{ imageType: batch.EcsMachineImageType.ECS_AL2023_NVIDIA }],
        launchTemplate,
        updateToLatestImageVersion: true,
      });
      // CDK names the launch template without a version, and Batch then keeps the version it saw at
      // creation: a changed root volume would never reach the hosts. The latest version number changes
      // with the template, so the environment is updated with it.
      (env.node.defaultChild as batch.CfnComputeEnvironment).addPropertyOverride(
        "ComputeResources.LaunchTemplate.Version",
        launchTemplate.latestVersionNumber,
      );
      this.environments[name] = env;
      return env;
    };
    const names = batchNames(stack);
    // With no capacity, or a job no instance type of its queue fits, a job would sit RUNNABLE until
    // the step's timeout. These are the only RUNNABLE reasons Batch's time-limit actions know: a job
    // waiting on an EC2 vCPU quota is not one of them (the RUNNABLE watchdog alarms on it instead).
    const jobStateTimeLimitActions = [
      batch.JobStateTimeLimitActionsReason.INSUFFICIENT_INSTANCE_CAPACITY,
      batch.JobStateTimeLimitActionsReason.COMPUTE_ENVIRONMENT_MAX_RESOURCE,
      batch.JobStateTimeLimitActionsReason.JOB_RESOURCE_REQUIREMENT,
    ].map((reason) => ({
      reason,
      maxTime: props.runnableTimeout,
      action: batch.JobStateTimeLimitActionsAction.CANCEL,
      state: batch.JobStateTimeLimitActionsState.RUNNABLE,
    }));
    const queue = (size: QueueSize, envId: string) => {
      const types = props.queueInstanceTypes[size];
      // Spot first; on-demand takes jobs only once spot is at its maxvCpus (Batch does not move a job
      // to the next environment when spot merely has no capacity).
      const spot = environment(`${envId}Spot`, true, types, props.maxVcpus);
      const onDemand = environment(`${envId}OnDemand`, false, types, props.maxVcpus);
      return new batch.JobQueue(this, `${envId}Queue`, {
        jobQueueName: names.queues[size],
        computeEnvironments: [
          { computeEnvironment: spot, order: 1 },
          { computeEnvironment: onDemand, order: 2 },
        ],
        jobStateTimeLimitActions,
      });
    };
    this.queues = { large: queue("large", "Large"), small: queue("small", "Small") };
    // Multi-node training: Batch runs no multi-node parallel job on Spot, and the nodes talk NCCL
    // and Ray to each other, so they share a cluster placement group and may reach each other.
    const trainOnDemand = environment(
      "TrainOnDemand",
      false,
      props.trainInstanceTypes,
      props.trainMaxVcpus,
      new ec2.PlacementGroup(this, "TrainPlacement", { strategy: ec2.PlacementGroupStrategy.CLUSTER }),
    );
    trainOnDemand.connections.allowInternally(
      ec2.Port.allTraffic(),
      "Ray and NCCL between the nodes of one multi-node training job",
    );
    this.trainQueue = new batch.JobQueue(this, "TrainQueue", {
      jobQueueName: names.trainQueue,
      computeEnvironments: [{ computeEnvironment: trainOnDemand, order: 1 }],
      jobStateTimeLimitActions,
    });

    // A prebuilt image in ECR is pulled with the execution role: it needs ECR's pull actions on that
    // repository (and an auth token), which an image given by URI does not grant by itself.
    const image = (
      uri: string | undefined,
      folder: string,
      id: string,
      setting?: string,
    ): ecs.ContainerImage => {
      if (!uri && setting && !existsSync(join(PROJECT_ROOT, "batch-images", folder, "Dockerfile"))) {
        // A checkout without the image's folder cannot build it: an error annotation stops
        // `cdk deploy` (and `cdk synth`) with this message instead of a job that could never start.
        Annotations.of(this).addError(
          `batch-images/${folder}/Dockerfile is missing: this checkout cannot build the ${folder} image; deploy with -c ${setting}=<image uri>`,
        );
        return ecs.ContainerImage.fromRegistry(`missing/batch-images/${folder}`);
      }
      if (!uri)
        return ecs.ContainerImage.fromAsset(PROJECT_ROOT, {
          file: `batch-images/${folder}/Dockerfile`,
          // GPU hosts are x86_64: an image built on an arm64 laptop would not start there.
          platform: Platform.LINUX_AMD64,
        });
      const ecrUri = ecrImage(uri);
      if (!ecrUri) return ecs.ContainerImage.fromRegistry(uri);
      const repo = ecr.Repository.fromRepositoryAttributes(this, id, {
        repositoryArn: `arn:${stack.partition}:ecr:${ecrUri.region}:${ecrUri.account}:repository/${ecrUri.repo}`,
        repositoryName: ecrUri.repo,
      });
      return ecs.ContainerImage.fromEcrRepository(repo, ecrUri.tag);
    };
    const generateImage = image(props.generateImageUri, "generate", "GenerateRepository");
    const trainImage = image(props.trainImageUri, "train-rl", "TrainRepository");
    const sftImage = image(props.sftImageUri, "train-sft", "TrainSftRepository", "sftImageUri");
    const evalImage = image(props.evalImageUri, "evaluate", "EvaluateRepository", "evalImageUri");

    const logGroup = new logs.LogGroup(this, "JobLogs", { retention: logs.RetentionDays.THREE_MONTHS });
    const jobRole = new iam.Role(this, "JobRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
    });
    // What the jobs do and nothing more: read and write objects under runs/ and the generation cache
    // (a streamed upload can be aborted), read stored images, list keys (a missing key then reads as
    // 404, not 403). No delete and no version access: a job never removes or rewrites history.
    jobRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"],
        resources: [props.bucket.arnForObjects("runs/*"), props.bucket.arnForObjects("cache/generate/*")],
      }),
    );
    jobRole.addToPolicy(
      new iam.PolicyStatement({
        actions: ["s3:GetObject"],
        // Stored images; model folders a run names (an s3:// training.rl.startModel).
        resources: [props.bucket.arnForObjects("images/*"), props.bucket.arnForObjects("models/*")],
      }),
    );
    jobRole.addToPolicy(
      new iam.PolicyStatement({ actions: ["s3:ListBucket"], resources: [props.bucket.bucketArn] }),
    );
    // Model folders in the deploy's source buckets (weightsUri, startModel, baseModel): read by prefix.
    const readSourceBuckets = (role: iam.Role) => {
      for (const b of props.sourceBuckets) {
        role.addToPolicy(
          new iam.PolicyStatement({
            actions: ["s3:ListBucket"],
            resources: [Stack.of(this).formatArn({ service: "s3", region: "", account: "", resource: b })],
          }),
        );
        role.addToPolicy(
          new iam.PolicyStatement({
            actions: ["s3:GetObject"],
            resources: [
              Stack.of(this).formatArn({
                service: "s3",
                region: "",
                account: "",
                resource: b,
                resourceName: "*",
              }),
            ],
          }),
        );
      }
    };
    readSourceBuckets(jobRole);
    props.key?.grant(jobRole, "kms:Decrypt", "kms:GenerateDataKey");
    /**
     * A job role with only its stage's keys (run ids are known only at run time, so `runs/*` stands
     * for each run): what it reads, what it writes, listing (a missing key then reads as 404, not
     * 403). No delete, no versions.
     */
    const stageRole = (id: string, reads: string[], writes: string[]) => {
      const role = new iam.Role(this, id, { assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com") });
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ["s3:GetObject"],
          resources: [...reads, ...writes].map((k) => props.bucket.arnForObjects(k)),
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ["s3:PutObject", "s3:AbortMultipartUpload"],
          resources: writes.map((k) => props.bucket.arnForObjects(k)),
        }),
      );
      role.addToPolicy(
        new iam.PolicyStatement({ actions: ["s3:ListBucket"], resources: [props.bucket.bucketArn] }),
      );
      readSourceBuckets(role);
      props.key?.grant(role, "kms:Decrypt", "kms:GenerateDataKey");
      return role;
    };
    // The run's resolved config and its record of the run (every job reads them).
    const runFiles = ["runs/*/config.json", "runs/*/run.json"];
    // train-sft: the SFT set (write-sft-dataset's _SUCCESS names its files; its images) and the base
    // model; it writes its checkpoints and summary (runs/<id>/train-sft/) and the model (models/sft/).
    const sftRole = stageRole(
      "TrainSftRole",
      [...runFiles, "runs/*/write-sft-dataset/*", "runs/*/datasets/sft/*", "images/*", "models/*"],
      ["runs/*/train-sft/*", "runs/*/models/sft/*"],
    );
    // evaluate: the run's models (and a base model staged under models/); it writes the results
    // (runs/<id>/eval/) and its stage folder (runs/<id>/evaluate/).
    const evalRole = stageRole(
      "EvaluateRole",
      [...runFiles, "runs/*/models/*", "models/*", "images/*"],
      ["runs/*/eval/*", "runs/*/evaluate/*"],
    );
    // The hosted judge's key, as Batch injects a secret (the execution role reads it at start; the
    // job role never can), and the one host it may go to.
    const judgeKey = props.judgeApiKeySecretArn
      ? {
          RECIPE_JUDGE_API_KEY: batch.Secret.fromSecretsManager(
            secrets.Secret.fromSecretCompleteArn(this, "JudgeKey", props.judgeApiKeySecretArn),
          ),
        }
      : undefined;
    const apiKey = props.teacherApiKeySecretArn
      ? {
          OPENAI_API_KEY: batch.Secret.fromSecretsManager(
            secrets.Secret.fromSecretCompleteArn(this, "TeacherKey", props.teacherApiKeySecretArn),
          ),
        }
      : undefined;
    const retryStrategies = [
      batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom({ onStatusReason: "Host EC2*" })),
      batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.custom({ onExitCode: "75" })),
      batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom({ onExitCode: "3" })),
      batch.RetryStrategy.of(batch.Action.RETRY, batch.Reason.CANNOT_PULL_CONTAINER),
      // Batch retries an exit that matches no rule: exit 1 or 137 would get every attempt. Batch allows
      // five rules; this one must stay last.
      batch.RetryStrategy.of(batch.Action.EXIT, batch.Reason.custom({ onExitCode: "*" })),
    ];
    const container = (
      name: string,
      image: ecs.ContainerImage,
      gpu: number,
      memoryGiB: number,
      shmGiB: number,
      secrets?: Record<string, batch.Secret>,
      extraEnv: Record<string, string> = {},
      role: iam.IRole = jobRole,
    ) =>
      new batch.EcsEc2ContainerDefinition(this, `${name}Container`, {
        image,
        cpu: Math.max(4, gpu * 4),
        memory: Size.gibibytes(memoryGiB),
        gpu,
        jobRole: role,
        logging: ecs.LogDriver.awsLogs({ streamPrefix: name, logGroup }),
        linuxParameters: new batch.LinuxParameters(this, `${name}Linux`, {
          sharedMemorySize: Size.gibibytes(shmGiB),
        }),
        environment: {
          RECIPE_BUCKET: props.bucket.bucketName,
          // The JS SDK v3 reads no region from instance metadata, and not every ECS agent sets one:
          // without these the first S3 call fails with "Region is missing".
          AWS_REGION: stack.region,
          AWS_DEFAULT_REGION: stack.region,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          ...extraEnv,
        },
        secrets,
        readonlyRootFilesystem: false,
      });
    this.generateJob = new batch.EcsJobDefinition(this, "Generate", {
      jobDefinitionName: names.generate,
      container: container(
        "Generate",
        generateImage,
        props.gpusPerJob,
        160,
        64,
        apiKey,
        apiKey && props.teacherEndpointHost ? { RECIPE_TEACHER_KEY_HOST: props.teacherEndpointHost } : {},
      ),
      retryAttempts: 10,
      retryStrategies,
      timeout: Duration.hours(24),
      propagateTags: true,
    });
    this.trainJob = new batch.EcsJobDefinition(this, "TrainRl", {
      jobDefinitionName: names.train,
      container: container("TrainRl", trainImage, 8, 900, 256),
      retryAttempts: 10,
      retryStrategies,
      timeout: Duration.days(14),
      propagateTags: true,
    });
    // Every node runs the same launcher; node 0 is the main node (the Ray head and verl's driver).
    this.trainMultiNodeJob = new batch.MultiNodeJobDefinition(this, "TrainRlMultiNode", {
      jobDefinitionName: names.trainMultiNode,
      containers: [
        {
          startNode: 0,
          endNode: 1,
          // NCCL and Gloo between nodes: not lo, Docker's bridge or ECS's ecs-eth0 (core/train/cluster.ts).
          container: container("TrainRlNode", trainImage, 8, 900, 256, undefined, {
            NCCL_SOCKET_IFNAME: DEFAULT_SOCKET_IFNAME,
            GLOO_SOCKET_IFNAME: DEFAULT_SOCKET_IFNAME,
          }),
        },
      ],
      mainNode: 0,
      retryAttempts: 10,
      retryStrategies,
      timeout: Duration.days(14),
      propagateTags: true,
    });
    // An open node range ("0:"), so that a submission sets the node count (training.rl.nodes) with
    // nodeOverrides.numNodes; Batch refuses that override on a closed range.
    (this.trainMultiNodeJob.node.defaultChild as batch.CfnJobDefinition).addPropertyOverride(
      "NodeProperties.NodeRangeProperties.0.TargetNodes",
      "0:",
    );

    // train-sft: lmms-engine under torchrun, like train-rl on one node (the large queue) or on
    // several (the on-demand training queue, in its placement group), with the same retry rules: a
    // retried attempt resumes from the newest complete checkpoint in S3.
    this.trainSftJob = new batch.EcsJobDefinition(this, "TrainSft", {
      jobDefinitionName: names.trainSft,
      container: container("TrainSft", sftImage, 8, 900, 256, undefined, {}, sftRole),
      retryAttempts: 10,
      retryStrategies,
      timeout: Duration.days(14),
      propagateTags: true,
    });
    this.trainSftMultiNodeJob = new batch.MultiNodeJobDefinition(this, "TrainSftMultiNode", {
      jobDefinitionName: names.trainSftMultiNode,
      containers: [
        {
          startNode: 0,
          endNode: 1,
          // torchrun's rendezvous and NCCL between nodes (core/train/cluster.ts).
          container: container(
            "TrainSftNode",
            sftImage,
            8,
            900,
            256,
            undefined,
            { NCCL_SOCKET_IFNAME: DEFAULT_SOCKET_IFNAME, GLOO_SOCKET_IFNAME: DEFAULT_SOCKET_IFNAME },
            sftRole,
          ),
        },
      ],
      mainNode: 0,
      retryAttempts: 10,
      retryStrategies,
      timeout: Duration.days(14),
      propagateTags: true,
    });
    // Open, as train-rl's: the submission sets training.sft.nodes.
    (this.trainSftMultiNodeJob.node.defaultChild as batch.CfnJobDefinition).addPropertyOverride(
      "NodeProperties.NodeRangeProperties.0.TargetNodes",
      "0:",
    );
    // evaluate: one node of the large queue; vLLM serves each model in turn inside the job.
    this.evaluateJob = new batch.EcsJobDefinition(this, "Evaluate", {
      jobDefinitionName: names.evaluate,
      container: container(
        "Evaluate",
        evalImage,
        8,
        900,
        256,
        judgeKey,
        judgeKey && props.judgeEndpointHost ? { RECIPE_JUDGE_KEY_HOST: props.judgeEndpointHost } : {},
        evalRole,
      ),
      retryAttempts: 10,
      retryStrategies,
      timeout: Duration.days(3),
      propagateTags: true,
    });
  }
}
