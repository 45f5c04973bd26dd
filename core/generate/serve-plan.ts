/**
 * How the `generate` job starts vLLM on its instance, from the model's own config and the run's
 * settings. Pure: the image's `serve-args` entry prints what this returns, and tests check it against
 * the pinned vLLM's arguments.
 *
 * - Tensor parallelism must divide the model's attention heads (vLLM refuses otherwise: a 7B Qwen2.5-VL
 *   has 28 heads, so TP 8 cannot start). The plan takes the smallest TP that divides both the heads and
 *   the GPU count and holds the weights, and runs data parallel over the remaining GPUs: far faster for
 *   a small policy than one engine over every GPU.
 * - The context defaults to prompt + response budget, not the model's maximum (262k for Qwen3-VL):
 *   vLLM refuses to start when one full-length sequence's KV cache does not fit beside the weights.
 * - The multimodal flags of vLLM's own Qwen-VL recipes: no video slots (they are profiled into memory
 *   otherwise), the vision encoder data-parallel, a shared-memory processor cache (each question's
 *   images arrive once per sample), async scheduling, and expert parallelism for MoE checkpoints.
 */

/** What the plan needs from the model's `config.json` and `model.safetensors.index.json`. */
export interface ModelFacts {
  attentionHeads: number;
  /** Bytes of all weights (the safetensors index's total_size); null when unknown. */
  weightBytes: number | null;
  moe: boolean;
}

export interface ServeSettings {
  gpus: number;
  /** Memory of one GPU in bytes; null when unknown. */
  gpuMemoryBytes: number | null;
  /** Tensor parallelism asked for in run.json (`teacher.tensorParallelSize`); else derived. */
  tensorParallel?: number;
  maxModelLen: number;
  maxImages: number;
}

export type ServePlan =
  | { ok: true; tensorParallel: number; dataParallel: number; args: string[] }
  | { ok: false; problem: string };

/** Share of a GPU's memory the weights may take; the rest is KV cache, activations and the encoder. */
export const WEIGHT_SHARE = 0.75;

/** Prompt budget (text and image tokens) added to the response budget for the default context. */
export const PROMPT_TOKENS = 16_384;

type Json = Record<string, unknown>;

/** Facts from a Hugging Face `config.json` (Qwen2.5-VL, Qwen3-VL and MoE layouts) and its index. */
export function modelFacts(config: Json, safetensorsIndex: Json | null): ModelFacts {
  const text = (config.text_config ?? config.llm_config ?? config) as Json;
  const heads = Number(text.num_attention_heads ?? config.num_attention_heads);
  if (!Number.isInteger(heads) || heads < 1)
    throw new Error("config.json has no num_attention_heads (in text_config or at the top level)");
  const experts = Number(text.num_experts ?? text.num_local_experts ?? text.n_routed_experts ?? 0);
  const total = Number((safetensorsIndex?.metadata as Json | undefined)?.total_size);
  return {
    attentionHeads: heads,
    weightBytes: Number.isFinite(total) && total > 0 ? total : null,
    moe: experts > 1,
  };
}

const GiB = 2 ** 30;
const gib = (b: number) => `${(b / GiB).toFixed(0)} GiB`;

export function planServe(model: ModelFacts, s: ServeSettings): ServePlan {
  if (!Number.isInteger(s.gpus) || s.gpus < 1) return { ok: false, problem: `no GPU found (${s.gpus})` };
  const candidates: number[] = [];
  for (let t = 1; t <= s.gpus; t++)
    if (s.gpus % t === 0 && model.attentionHeads % t === 0) candidates.push(t);
  const fits = (t: number) =>
    model.weightBytes === null ||
    s.gpuMemoryBytes === null ||
    model.weightBytes / t <= WEIGHT_SHARE * s.gpuMemoryBytes;
  let tp: number;
  if (s.tensorParallel !== undefined) {
    if (!candidates.includes(s.tensorParallel))
      return {
        ok: false,
        problem: `teacher.tensorParallelSize ${s.tensorParallel} must divide both the ${s.gpus} GPUs and the model's ${model.attentionHeads} attention heads: use one of ${candidates.join(", ")}`,
      };
    tp = s.tensorParallel;
  } else {
    const fitting = candidates.filter(fits);
    if (fitting.length === 0) {
      return {
        ok: false,
        problem: `the model's weights (${gib(model.weightBytes!)}) do not fit on ${s.gpus} GPUs of ${gib(s.gpuMemoryBytes!)} (at most ${Math.round(WEIGHT_SHARE * 100)}% of each for weights): use an instance with more GPU memory`,
      };
    }
    // Unknown sizes: the widest split, which fits whenever anything does.
    tp = model.weightBytes === null || s.gpuMemoryBytes === null ? fitting.at(-1)! : fitting[0]!;
  }
  const dp = s.gpus / tp;
  const args = [
    "--tensor-parallel-size",
    String(tp),
    ...(dp > 1 ? ["--data-parallel-size", String(dp)] : []),
    "--max-model-len",
    String(s.maxModelLen),
    "--limit-mm-per-prompt",
    JSON.stringify({ image: s.maxImages, video: 0 }),
    "--mm-processor-cache-type",
    "shm",
    "--async-scheduling",
    ...(tp > 1 ? ["--mm-encoder-tp-mode", "data"] : []),
    ...(model.moe && tp > 1 ? ["--enable-expert-parallel"] : []),
  ];
  return { ok: true, tensorParallel: tp, dataParallel: dp, args };
}
