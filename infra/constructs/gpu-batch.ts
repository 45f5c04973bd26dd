/**
 * AWS Batch for the GPU jobs: managed EC2 compute environments (spot and on-demand) of GPU instance
 * types, one queue that tries spot first and falls back to on-demand, and job definitions for
 * `generate` and `train-rl` with the container contract's retry rules: spot reclaim (`Host EC2*`) and
 * exit 75 retry, exit 3 fails at once.
 */
import { Duration, Size, Stack } from "aws-cdk-lib";
import * as batch from "aws-cdk-lib/aws-batch";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as iam from "aws-cdk-lib/aws-iam";
import type * as kms from "aws-cdk-lib/aws-kms";
import * as logs from "aws-cdk-lib/aws-logs";
import type * as s3 from "aws-cdk-lib/aws-s3";
import * as secrets from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import { DEFAULT_SOCKET_IFNAME } from "../../core/train/cluster.ts";

export interface GpuBatchProps {
  readonly bucket: s3.IBucket;
  readonly key?: kms.IKey;
  readonly vpcId?: string;
  readonly instanceTypes: string[];
  readonly maxVcpus: number;
  readonly gpusPerJob: number;
  readonly generateImage: ecs.ContainerImage;
  readonly trainImage: ecs.ContainerImage;
  readonly teacherApiKeySecretArn?: string;
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
  queue: string;
  generate: string;
  train: string;
  trainQueue: string;
  trainMultiNode: string;
} {
  const prefix = stack.stackName;
  return {
    queue: `${prefix}-gpu`,
    generate: `${prefix}-generate`,
    train: `${prefix}-train-rl`,
    trainQueue: `${prefix}-train-multinode`,
    trainMultiNode: `${prefix}-train-rl-multinode`,
  };
}

/**
 * The state machine's name, after the stack like the Batch names: one stack per account and region
 * would otherwise be the limit (a fixed name cannot be created twice).
 */
export function stateMachineName(stackName: string): string {
  return `${stackName}-run`;
}

export class GpuBatch extends Construct {
  readonly queue: batch.JobQueue;
  readonly generateJob: batch.EcsJobDefinition;
  readonly trainJob: batch.EcsJobDefinition;
  /** Training on more than one node: a multi-node parallel job, on its own on-demand queue. */
  readonly trainMultiNodeJob: batch.MultiNodeJobDefinition;
  readonly trainQueue: batch.JobQueue;
  readonly vpc: ec2.IVpc;

  constructor(scope: Construct, id: string, props: GpuBatchProps) {
    super(scope, id);
    if (props.instanceTypes.length === 0) throw new Error("GpuBatch needs at least one instance type");
    this.vpc = props.vpcId
      ? ec2.Vpc.fromLookup(this, "Vpc", { vpcId: props.vpcId })
      : new ec2.Vpc(this, "Vpc", {
          maxAzs: 3,
          natGateways: 1,
          subnetConfiguration: [
            { name: "public", subnetType: ec2.SubnetType.PUBLIC },
            { name: "gpu", subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
          ],
          gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
          flowLogs: { all: { trafficType: ec2.FlowLogTrafficType.REJECT } },
        });
    const instanceTypes = props.instanceTypes.map((t) => new ec2.InstanceType(t));
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
    const environment = (name: string, spot: boolean, placement?: ec2.IPlacementGroup) =>
      new batch.ManagedEc2EcsComputeEnvironment(this, name, {
        vpc: this.vpc,
        // A cluster placement group lives in one Availability Zone: its environment uses one subnet.
        vpcSubnets: placement
          ? {
              subnets: [
                this.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnets[0]!,
              ],
            }
          : { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        placementGroup: placement,
        spot,
        instanceTypes,
        useOptimalInstanceClasses: false,
        minvCpus: 0,
        maxvCpus: props.maxVcpus,
        allocationStrategy: spot
          ? batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
          : batch.AllocationStrategy.BEST_FIT_PROGRESSIVE,
        // ECS_AL2_NVIDIA reached end of life on 2026-06-30.
        images: [{ imageType: batch.EcsMachineImageType.ECS_AL2023_NVIDIA }],
        launchTemplate,
        updateToLatestImageVersion: true,
      });
    const spot = environment("Spot", true);
    const onDemand = environment("OnDemand", false);
    // Multi-node training: Batch runs no multi-node parallel job on Spot, and the nodes talk NCCL
    // and Ray to each other, so they share a cluster placement group and may reach each other.
    const trainOnDemand = environment(
      "TrainOnDemand",
      false,
      new ec2.PlacementGroup(this, "TrainPlacement", { strategy: ec2.PlacementGroupStrategy.CLUSTER }),
    );
    trainOnDemand.connections.allowInternally(
      ec2.Port.allTraffic(),
      "Ray and NCCL between the nodes of one multi-node training job",
    );
    const names = batchNames(Stack.of(this));
    // With no GPU quota or capacity a job would sit RUNNABLE until the execution's 30-day timeout.
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
    this.queue = new batch.JobQueue(this, "Queue", {
      jobQueueName: names.queue,
      computeEnvironments: [
        { computeEnvironment: spot, order: 1 },
        { computeEnvironment: onDemand, order: 2 },
      ],
      jobStateTimeLimitActions,
    });
    this.trainQueue = new batch.JobQueue(this, "TrainQueue", {
      jobQueueName: names.trainQueue,
      computeEnvironments: [{ computeEnvironment: trainOnDemand, order: 1 }],
      jobStateTimeLimitActions,
    });

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
        // Stored images; model folders a run names (an s3:// training.startModel).
        resources: [props.bucket.arnForObjects("images/*"), props.bucket.arnForObjects("models/*")],
      }),
    );
    jobRole.addToPolicy(
      new iam.PolicyStatement({ actions: ["s3:ListBucket"], resources: [props.bucket.bucketArn] }),
    );
    for (const b of props.sourceBuckets) {
      // Listing: a staged model folder (weightsUri, startModel) is read by its prefix.
      jobRole.addToPolicy(
        new iam.PolicyStatement({
          actions: ["s3:ListBucket"],
          resources: [Stack.of(this).formatArn({ service: "s3", region: "", account: "", resource: b })],
        }),
      );
      jobRole.addToPolicy(
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
    props.key?.grant(jobRole, "kms:Decrypt", "kms:GenerateDataKey");
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
      extraEnvironment: Record<string, string> = {},
    ) =>
      new batch.EcsEc2ContainerDefinition(this, `${name}Container`, {
        image,
        cpu: Math.max(4, gpu * 4),
        memory: Size.gibibytes(memoryGiB),
        gpu,
        jobRole,
        logging: ecs.LogDriver.awsLogs({ streamPrefix: name, logGroup }),
        linuxParameters: new batch.LinuxParameters(this, `${name}Linux`, {
          sharedMemorySize: Size.gibibytes(shmGiB),
        }),
        environment: {
          RECIPE_BUCKET: props.bucket.bucketName,
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
          ...extraEnvironment,
        },
        secrets: apiKey,
        readonlyRootFilesystem: false,
      });
    this.generateJob = new batch.EcsJobDefinition(this, "Generate", {
      jobDefinitionName: names.generate,
      container: container("Generate", props.generateImage, props.gpusPerJob, 160, 64),
      retryAttempts: 10,
      retryStrategies,
      timeout: Duration.hours(24),
      propagateTags: true,
    });
    this.trainJob = new batch.EcsJobDefinition(this, "TrainRl", {
      jobDefinitionName: names.train,
      container: container("TrainRl", props.trainImage, 8, 900, 256),
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
          container: container("TrainRlNode", props.trainImage, 8, 900, 256, {
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
    // An open node range ("0:"), so that a submission sets the node count (training.nodes) with
    // nodeOverrides.numNodes; Batch refuses that override on a closed range.
    (this.trainMultiNodeJob.node.defaultChild as batch.CfnJobDefinition).addPropertyOverride(
      "NodeProperties.NodeRangeProperties.0.TargetNodes",
      "0:",
    );
  }
}
