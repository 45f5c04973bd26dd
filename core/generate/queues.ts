/**
 * Which deployed GPU queue a generate job goes to. The stack deploys a large queue (p5 class) and a
 * small one (g6e class); Batch starts whichever of a queue's instance types is cheapest or has
 * capacity, not the one with the most GPU memory, so a queue holds a model only when EVERY one of its
 * instance types holds it (core/generate/fit.ts). The teacher's and the policy's jobs each go to the
 * smallest queue that holds their model; a model no queue holds refuses the run before any GPU time,
 * naming the deploy setting to change.
 */
import type { ConfigProblem } from "../config/index.ts";
import type { RunConfig } from "../config/schema.ts";
import { ON_DEMAND_USD_PER_HOUR } from "../cost.ts";
import { GPU_INSTANCES, MODEL_WEIGHT_GB, modelFitProblem } from "./fit.ts";

export type QueueSize = "small" | "large";

/** The deploy settings (`-c <setting>=a,b`) that set each queue's instance types. */
export const QUEUE_SETTING: Record<QueueSize, "smallInstanceTypes" | "largeInstanceTypes"> = {
  small: "smallInstanceTypes",
  large: "largeInstanceTypes",
};

/**
 * The defaults: p5.48xlarge (8 x 80 GB) is the one type that holds the published teacher
 * (Qwen3-VL-235B, ~471 GB); g6e.48xlarge (8 x 48 GB, 8 GPUs like the generate job asks) serves the
 * 7B policy's rollouts at about half the price. p4d.24xlarge (8 x 40 GB) is in neither: in a queue
 * with p5 Batch would pick it for its price and the teacher would not fit.
 */
export const DEFAULT_INSTANCE_TYPES: Record<QueueSize, string[]> = {
  small: ["g6e.48xlarge"],
  large: ["p5.48xlarge"],
};

export interface GpuQueue {
  size: QueueSize;
  instanceTypes: string[];
  /** The queue's ARN (or name) that SubmitJob is given. */
  queue: string;
}

/** Smallest first: the order in which queues are tried for a model. */
const ORDER: QueueSize[] = ["small", "large"];

/** The problems of a model on each of a queue's instance types (empty: every type holds it, or is unknown). */
function misfits(model: string, queue: GpuQueue): string[] {
  return queue.instanceTypes.flatMap((t) => {
    const p = modelFitProblem(model, t);
    return p ? [p] : [];
  });
}

/**
 * The queue for a model: the smallest whose every instance type holds it. A model whose size is not
 * in the table goes to the large queue (the most GPU memory); the job's own plan then checks it.
 */
export function queueFor(model: string, queues: GpuQueue[]): { queue: GpuQueue } | { problem: string } {
  const sorted = [...queues].sort((a, b) => ORDER.indexOf(a.size) - ORDER.indexOf(b.size));
  if (sorted.length === 0) return { problem: "the stack has no GPU queue" };
  if (MODEL_WEIGHT_GB[model] === undefined) return { queue: sorted[sorted.length - 1]! };
  for (const q of sorted) if (misfits(model, q).length === 0) return { queue: q };
  const holding = Object.keys(GPU_INSTANCES).filter((t) => modelFitProblem(model, t) === null);
  const large = sorted[sorted.length - 1]!;
  return {
    problem:
      `no deployed GPU queue holds ${model} (about ${MODEL_WEIGHT_GB[model]} GB of BF16 weights): ` +
      sorted
        .map((q) => `${QUEUE_SETTING[q.size]} is ${q.instanceTypes.join(",")} (${misfits(model, q)[0]})`)
        .join("; ") +
      (holding.length > 0
        ? `. Deploy with -c ${QUEUE_SETTING[large.size]}=${holding.join(",")} (every instance type of a queue must hold it: Batch starts any of them)`
        : ". No GPU instance type known here holds it"),
  };
}

export interface QueuePlan {
  /** Where the distill jobs go (the teacher in the job). */
  teacherQueue: string;
  /** Where the rollout jobs go (the policy in the job). */
  policyQueue: string;
  problems: ConfigProblem[];
}

/**
 * The queues a run's generate jobs go to, or the problems that refuse it. A hosted teacher
 * (`teacher.serving: endpoint`) needs no GPU memory for itself: its jobs only call the endpoint, on
 * the small queue.
 */
export function planQueues(config: RunConfig, queues: GpuQueue[]): QueuePlan {
  const problems: ConfigProblem[] = [];
  const small = [...queues].sort((a, b) => ORDER.indexOf(a.size) - ORDER.indexOf(b.size))[0];
  const pick = (path: string, model: string): string => {
    const r = queueFor(model, queues);
    if ("queue" in r) return r.queue.queue;
    problems.push({
      path,
      expected: "a model that an instance type of a deployed GPU queue holds",
      found: JSON.stringify(model),
      message: r.problem,
    });
    return "";
  };
  const teacherQueue =
    config.teacher.serving === "endpoint"
      ? (small?.queue ?? "")
      : pick("$.teacher.model", config.teacher.model);
  const policyQueue = config.rl.enabled
    ? pick("$.rl.policyModel", config.rl.policyModel)
    : (small?.queue ?? "");
  return { teacherQueue, policyQueue, problems };
}

/**
 * The instance type a queue's jobs are priced at: the cheapest of its types with a known price,
 * since Batch's allocation strategies favour the lowest price among the types that have capacity.
 */
export function pricedInstance(queue: Pick<GpuQueue, "instanceTypes">): string | undefined {
  return queue.instanceTypes
    .filter((t) => t in ON_DEMAND_USD_PER_HOUR)
    .sort((a, b) => ON_DEMAND_USD_PER_HOUR[a]! - ON_DEMAND_USD_PER_HOUR[b]!)[0];
}

/** A comma-separated deploy setting as a list ("a, b" -> ["a", "b"]). */
export function settingList(v: unknown, fallback: string[]): string[] {
  if (v === undefined || v === null || v === "") return fallback;
  if (Array.isArray(v)) return v.map(String);
  return String(v)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}
