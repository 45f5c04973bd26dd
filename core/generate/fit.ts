/**
 * Whether a model can be served on a GPU instance type, before any GPU time is spent: its weights
 * against the instance's total GPU memory, with the same share for weights that the serving plan uses
 * (core/generate/serve-plan.ts; the rest is KV cache and activations). Only models and instance types
 * in the tables are checked; anything else is left to the job's own plan, which exits 3 naming the
 * problem.
 */
import { WEIGHT_SHARE } from "./serve-plan.ts";

/** GPUs, memory per GPU (GiB) and vCPUs of the GPU instance types the stack deploys or prices. */
export const GPU_INSTANCES: Record<string, { gpus: number; gpuGiB: number; vcpus: number }> = {
  "g6e.xlarge": { gpus: 1, gpuGiB: 48, vcpus: 4 },
  "g6e.2xlarge": { gpus: 1, gpuGiB: 48, vcpus: 8 },
  "g6e.12xlarge": { gpus: 4, gpuGiB: 48, vcpus: 48 },
  "g6e.24xlarge": { gpus: 4, gpuGiB: 48, vcpus: 96 },
  "g6e.48xlarge": { gpus: 8, gpuGiB: 48, vcpus: 192 },
  "p4d.24xlarge": { gpus: 8, gpuGiB: 40, vcpus: 96 },
  "p5.48xlarge": { gpus: 8, gpuGiB: 80, vcpus: 192 },
};

/** BF16 weight bytes of the models the recipe uses (safetensors totals, rounded up). */
export const MODEL_WEIGHT_GB: Record<string, number> = {
  "Qwen/Qwen3-VL-235B-A22B-Instruct": 471,
  "Qwen/Qwen3-VL-235B-A22B-Thinking": 471,
  "Qwen/Qwen3-235B-A22B-Instruct-2507": 470,
  "Qwen/Qwen2.5-VL-72B-Instruct": 147,
  "Qwen/Qwen2.5-VL-32B-Instruct": 67,
  "Qwen/Qwen2.5-VL-7B-Instruct": 17,
  "Qwen/Qwen2.5-VL-3B-Instruct": 8,
};

const GiB = 2 ** 30;

/** A problem naming the model, its size, the instance and the ones that fit; null when it fits or is unknown. */
export function modelFitProblem(model: string, instanceType: string): string | null {
  const gb = MODEL_WEIGHT_GB[model];
  const instance = GPU_INSTANCES[instanceType];
  if (gb === undefined || instance === undefined) return null;
  const room = (i: { gpus: number; gpuGiB: number }) => WEIGHT_SHARE * i.gpus * i.gpuGiB * GiB;
  if (gb * 1e9 <= room(instance)) return null;
  const fitting = Object.entries(GPU_INSTANCES)
    .filter(([, i]) => gb * 1e9 <= room(i))
    .map(([name]) => name);
  return (
    `${model} (about ${gb} GB of BF16 weights) does not fit on ${instanceType} ` +
    `(${instance.gpus} x ${instance.gpuGiB} GiB, at most ${Math.round(WEIGHT_SHARE * 100)}% of it for weights): ` +
    (fitting.length > 0 ? `use ${fitting.join(" or ")}` : "no instance type here holds it")
  );
}
