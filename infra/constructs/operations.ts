/** Operations: a CloudWatch dashboard and alarms (execution failed or timed out, Batch job failed, Lambda errors). */
import { Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import * as cw from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import * as events from "aws-cdk-lib/aws-events";
import * as targets from "aws-cdk-lib/aws-events-targets";
import * as iam from "aws-cdk-lib/aws-iam";
import * as kms from "aws-cdk-lib/aws-kms";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as sns from "aws-cdk-lib/aws-sns";
import * as subs from "aws-cdk-lib/aws-sns-subscriptions";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import type * as sfn from "aws-cdk-lib/aws-stepfunctions";
import { Construct } from "constructs";

export interface OperationsProps {
  readonly stateMachine: sfn.StateMachine;
  readonly functions: lambda.IFunction[];
  /** Every GPU queue (generate queues and the multi-node training queue): each one's failures alarm. */
  readonly jobQueueArns: string[];
  /** @default no notifications */
  readonly alarmEmail?: string;
  readonly key?: kms.IKey;
  /** Where undelivered or failed run starts go (alarmed on). */
  readonly lostRunStarts?: sqs.IQueue;
}

export class Operations extends Construct {
  readonly dashboard: cw.Dashboard;
  readonly topic?: sns.Topic;
  readonly alarms: cw.Alarm[] = [];

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    if (props.alarmEmail) {
      // The topic has its own key: CloudWatch must be able to use it to publish alarms (the bucket key's
      // policy does not, and should not, let it), and only on behalf of this account's alarms.
      const masterKey = props.key
        ? new kms.Key(this, "AlarmsKey", {
            enableKeyRotation: true,
            removalPolicy: RemovalPolicy.RETAIN,
            description: "recipe-pipeline alarm notifications",
          })
        : undefined;
      masterKey?.addToResourcePolicy(
        new iam.PolicyStatement({
          principals: [new iam.ServicePrincipal("cloudwatch.amazonaws.com")],
          actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
          resources: ["*"],
          conditions: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } },
        }),
      );
      this.topic = new sns.Topic(this, "Alarms", { masterKey, enforceSSL: true });
      this.topic.addSubscription(new subs.EmailSubscription(props.alarmEmail));
    }
    const sm = props.stateMachine;
    const alarm = (name: string, metric: cw.IMetric, description: string) => {
      const a = new cw.Alarm(this, name, {
        metric,
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      if (this.topic) a.addAlarmAction(new actions.SnsAction(this.topic));
      this.alarms.push(a);
      return a;
    };
    alarm(
      "ExecutionFailed",
      sm.metricFailed({ period: Duration.minutes(5), statistic: "Sum" }),
      "A recipe run failed: read runs/<id>/failure.json",
    );
    alarm(
      "ExecutionTimedOut",
      sm.metricTimedOut({ period: Duration.minutes(5), statistic: "Sum" }),
      "A recipe run timed out",
    );
    if (props.lostRunStarts) {
      alarm(
        "RunStartLost",
        props.lostRunStarts.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: "Maximum",
        }),
        "An uploaded run.json did not start a run: its event is in the LostRunStarts queue (start-run's error is in its log)",
      );
    }
    // Batch publishes no job metrics: its state changes go to a log group, a metric filter counts failures.
    const batchEvents = new logs.LogGroup(this, "BatchJobEvents", {
      retention: logs.RetentionDays.THREE_MONTHS,
    });
    new events.Rule(this, "BatchJobEventsRule", {
      eventPattern: {
        source: ["aws.batch"],
        detailType: ["Batch Job State Change"],
        detail: { jobQueue: props.jobQueueArns },
      },
      targets: [new targets.CloudWatchLogGroup(batchEvents)],
    });
    const failedFilter = new logs.MetricFilter(this, "BatchJobsFailedFilter", {
      logGroup: batchEvents,
      filterPattern: logs.FilterPattern.stringValue("$.detail.status", "=", "FAILED"),
      metricNamespace: "RecipePipeline",
      metricName: "BatchJobsFailed",
      metricValue: "1",
      defaultValue: 0,
    });
    alarm(
      "BatchJobFailed",
      failedFilter.metric({ statistic: "Sum", period: Duration.minutes(5) }),
      "A GPU job failed after its retries",
    );
    // Alarms allow at most 10 metrics in an expression: one alarm per group of 10 functions.
    for (let g = 0; g * 10 < props.functions.length; g++) {
      const group = props.functions.slice(g * 10, g * 10 + 10);
      const errors = new cw.MathExpression({
        expression: group.map((_, i) => `e${i}`).join("+"),
        usingMetrics: Object.fromEntries(
          group.map((f, i) => [`e${i}`, f.metricErrors({ period: Duration.minutes(5) })]),
        ),
        period: Duration.minutes(5),
      });
      alarm(`LambdaErrors${g}`, errors, "Pipeline Lambdas are failing (retries may still recover)");
    }

    // A GPU job blocking its queue in RUNNABLE (no instance type that fits it, no capacity, the
    // environment at its max vCPUs, a misconfigured environment): Batch says why in a "Batch Job Queue
    // Blocked" event. The event (with Batch's statusReason) goes to the events log group and, with an
    // alarm email, to the topic; the alarm says where to read the reason.
    const blockedPattern = {
      source: ["aws.batch"],
      detailType: ["Batch Job Queue Blocked"],
      detail: { jobQueue: props.jobQueueArns },
    };
    new events.Rule(this, "GpuQueueBlockedRule", {
      eventPattern: blockedPattern,
      targets: [new targets.CloudWatchLogGroup(batchEvents)],
    });
    const blockedFilter = new logs.MetricFilter(this, "GpuQueueBlockedFilter", {
      logGroup: batchEvents,
      filterPattern: logs.FilterPattern.stringValue("$.detail-type", "=", "Batch Job Queue Blocked"),
      metricNamespace: "RecipePipeline",
      metricName: "GpuQueueBlocked",
      metricValue: "1",
      defaultValue: 0,
    });
    alarm(
      "GpuQueueBlocked",
      blockedFilter.metric({ statistic: "Sum", period: Duration.minutes(5) }),
      "A GPU job is stuck RUNNABLE and blocks its queue: Batch's reason (detail.statusReason) is in the BatchJobEvents log group and in the notification. A job waiting on an EC2 vCPU quota raises no such event: watch the queue's RUNNABLE jobs (aws batch list-jobs --job-status RUNNABLE)",
    );

    if (this.topic) {
      new events.Rule(this, "GpuQueueBlockedNotify", {
        eventPattern: blockedPattern,
        targets: [new targets.SnsTopic(this.topic, { authorizeUsingRole: true })],
      });
      new events.Rule(this, "BatchFailedNotify", {
        eventPattern: {
          source: ["aws.batch"],
          detailType: ["Batch Job State Change"],
          detail: { status: ["FAILED"], jobQueue: props.jobQueueArns },
        },
        // Through a role: EventBridge gets no grant on the topic's key in the key policy itself.
        targets: [new targets.SnsTopic(this.topic, { authorizeUsingRole: true })],
      });
    }

    // Named after the stack: a fixed name would allow one stack per account and region.
    this.dashboard = new cw.Dashboard(this, "Dashboard", { dashboardName: Stack.of(this).stackName });
    const stage = (metricName: string) =>
      new cw.MathExpression({
        expression: `SEARCH('{RecipePipeline,service,stage} MetricName="${metricName}"', 'Sum', 300)`,
        label: metricName,
        period: Duration.minutes(5),
      });
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: "Executions",
        left: [sm.metricStarted(), sm.metricSucceeded(), sm.metricFailed(), sm.metricTimedOut()],
        width: 12,
      }),
      new cw.GraphWidget({
        title: "Execution time",
        left: [sm.metricTime({ statistic: "Maximum" })],
        width: 12,
      }),
      new cw.GraphWidget({
        title: "Records in / out / rejected per stage",
        left: [stage("RecordsIn"), stage("RecordsOut"), stage("RecordsRejected")],
        width: 12,
      }),
      new cw.GraphWidget({
        title: "Lambda errors",
        left: props.functions.map((f) => f.metricErrors()),
        width: 12,
      }),
      new cw.GraphWidget({
        title: "Lambda duration (stage time)",
        left: props.functions.map((f) => f.metricDuration({ statistic: "Maximum" })),
        width: 12,
      }),
      new cw.LogQueryWidget({
        title: "Batch jobs by state",
        logGroupNames: [batchEvents.logGroupName],
        queryLines: ["stats count(*) by detail.status", "sort detail.status"],
        width: 12,
      }),
    );
  }
}
