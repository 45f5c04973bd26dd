/**
 * The `vllm serve` command the generate image runs, checked against the pinned vLLM's own argument
 * definitions (tests/fixtures/vllm-0.11.0-args.json, extracted from the released wheel by
 * tests/python/extract_vllm_args.py): a fake `vllm` accepts any flag, the real one exits on an
 * unknown flag or choice before it loads a weight.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { planServe } from "../../core/generate/serve-plan.ts";

const VLLM = JSON.parse(readFileSync("tests/fixtures/vllm-0.11.0-args.json", "utf8")) as {
  vllm: string;
  flags: string[];
  choices: Record<string, string[]>;
};
const DOCKERFILE = readFileSync("batch-images/generate/Dockerfile", "utf8");
const ENTRYPOINT = readFileSync("batch-images/generate/entrypoint.sh", "utf8");

/** Every flag of an argument list, with the value that follows it when it takes one. */
function flagsOf(args: string[]): [string, string | undefined][] {
  return args.flatMap((a, i) =>
    a.startsWith("--") ? [[a, args[i + 1]?.startsWith("--") ? undefined : args[i + 1]]] : [],
  );
}

function problems(args: string[]): string[] {
  const out: string[] = [];
  for (const [flag, value] of flagsOf(args)) {
    if (!VLLM.flags.includes(flag)) out.push(`${flag} is not a vllm ${VLLM.vllm} flag`);
    const choices = VLLM.choices[flag];
    if (choices && !choices.includes(value ?? ""))
      out.push(`${flag} ${value}: not one of ${choices.join(", ")}`);
  }
  return out;
}

describe(`the generate image's vllm serve command, against vLLM ${VLLM.vllm}`, () => {
  it("is the vLLM the image is built on", () => {
    expect(DOCKERFILE).toContain(`FROM vllm/vllm-openai:v${VLLM.vllm}`);
  });

  it("uses only flags and choices that vLLM defines, for every serving plan", () => {
    const fixed = [...ENTRYPOINT.matchAll(/^\s*ARGS=\(serve (.*)\)$/gm)].flatMap(
      (m) => m[1]!.match(/--[a-z-]+/g) ?? [],
    );
    expect(fixed).toEqual(["--host", "--port", "--served-model-name"]);
    const plans = [
      planServe(
        { attentionHeads: 28, weightBytes: 16.6e9, moe: false },
        { gpus: 8, gpuMemoryBytes: 80e9, maxModelLen: 24_576, maxImages: 8 },
      ),
      planServe(
        { attentionHeads: 64, weightBytes: 471e9, moe: true },
        { gpus: 8, gpuMemoryBytes: 85.5e9, maxModelLen: 32_768, maxImages: 8 },
      ),
      planServe(
        { attentionHeads: 16, weightBytes: null, moe: false },
        { gpus: 1, gpuMemoryBytes: null, maxModelLen: 8192, maxImages: 1 },
      ),
    ];
    for (const plan of plans) {
      expect(plan.ok).toBe(true);
      if (plan.ok) expect(problems([...fixed.flatMap((f) => [f, "x"]), ...plan.args])).toEqual([]);
    }
  });

  it("would catch a flag or a choice vLLM does not define", () => {
    expect(problems(["--tensor-parallel", "2", "--mm-encoder-tp-mode", "replicate"])).toEqual([
      `--tensor-parallel is not a vllm ${VLLM.vllm} flag`,
      "--mm-encoder-tp-mode replicate: not one of weights, data",
    ]);
  });
});

describe("the vLLM engine arguments the train-rl launcher hands verl", () => {
  it("names only engine arguments vLLM defines (verl passes engine_kwargs.vllm to vllm.LLM unchecked)", async () => {
    const { verlOverrides } = await import("../../core/train/verl.ts");
    const { RunConfig } = await import("../../core/config/schema.ts");
    const config = RunConfig.parse({
      runId: "t",
      sources: { rl: [{ name: "a", uri: "a.jsonl", format: "jsonl", domain: "chart", license: "x" }] },
      training: { rl: { enabled: true } },
    });
    const paths = {
      trainFiles: ["/d/a.parquet"],
      valFiles: ["/d/v.parquet"],
      checkpointDir: "/c",
      rewardPath: "/r.py",
      modelPath: "/m",
    };
    const engine = verlOverrides(config, paths)
      .map((o) => /^\+?actor_rollout_ref\.rollout\.engine_kwargs\.vllm\.([a-z_]+)=/.exec(o)?.[1])
      .filter((k): k is string => k !== undefined);

    expect(engine).toEqual(["disable_mm_preprocessor_cache"]);
    for (const k of engine) expect(VLLM.flags).toContain(`--${k.replace(/_/g, "-")}`);
  });
});
