/**
 * Whether a GPU image can load a model: the model's architecture (from its id, by family) must be in
 * both the image's vLLM and transformers (core/models/image-architectures.json, generated from each
 * image's lock by tests/images/architectures.py). A model whose family is not known here is not
 * refused by name; the job reads its config.json.
 */
import table from "./image-architectures.json" with { type: "json" };

export type Image = "generate" | "train-rl" | "evaluate";

/** Families by the model name's last path segment (a hub id or an s3:// folder), most specific first. */
const FAMILIES: [RegExp, string][] = [
  [/qwen3-omni/i, "Qwen3OmniMoeForConditionalGeneration"],
  [/qwen3-vl-.*-a\d+b/i, "Qwen3VLMoeForConditionalGeneration"],
  [/qwen3-vl/i, "Qwen3VLForConditionalGeneration"],
  [/qwen2\.5-vl/i, "Qwen2_5_VLForConditionalGeneration"],
  [/qwen2-vl/i, "Qwen2VLForConditionalGeneration"],
  [/qwen3-next/i, "Qwen3NextForCausalLM"],
  [/qwen3-.*-a\d+b/i, "Qwen3MoeForCausalLM"],
  [/qwen3-/i, "Qwen3ForCausalLM"],
  [/qwen2\.5-/i, "Qwen2ForCausalLM"],
];

/** The architecture (config.json `architectures[0]`) a model id or folder names, or null if unknown. */
export function architectureOf(model: string): string | null {
  const name = model.replace(/\/+$/, "").split("/").at(-1) ?? model;
  return FAMILIES.find(([re]) => re.test(name))?.[1] ?? null;
}

/** Why `image` cannot load `model` (naming the versions), or null when it can or the family is unknown. */
export function unloadable(model: string, image: Image, arch = architectureOf(model)): string | null {
  const entry = table[image];
  if (!arch || entry.architectures.includes(arch)) return null;
  return `${model} is a ${arch}, which the ${image} image cannot load: not in both its transformers ${entry.transformers} and vLLM ${entry.vllm}`;
}
