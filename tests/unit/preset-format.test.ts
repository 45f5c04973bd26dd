/** A preset implies its format (issue 27, item 8); a source without either is told so. */
import { describe, expect, it } from "vitest";
import { validateRunConfig } from "../../core/config/index.ts";

describe("a source's format", () => {
  it("comes from its preset when the source does not say it", () => {
    const r = validateRunConfig({
      runId: "p",
      sources: {
        rl: [{ name: "virl", uri: "s3://b/virl/", preset: "virl39k", domain: "general_vqa", license: "x" }],
        sft: [
          {
            name: "llava",
            uri: "s3://b/llava/",
            preset: "llava-cot-100k",
            domain: "general_vqa",
            license: "x",
          },
        ],
      },
    });

    expect(r.ok && [r.config.sources.rl[0]!.format, r.config.sources.sft[0]!.format]).toEqual([
      "parquet",
      "jsonl",
    ]);
  });

  it("is required without a preset, and said along with the source's other problems", () => {
    const r = validateRunConfig({
      runId: "p",
      sources: { sft: [{ name: "Bad Name", uri: "q.jsonl", domain: "text_math", license: "x" }] },
    });

    expect(r.ok).toBe(false);
    const paths = r.ok ? [] : r.problems.map((p) => p.path);
    expect(paths).toContain("$.sources.sft[0].format");
    expect(paths).toContain("$.sources.sft[0].name");
    expect(paths.filter((p) => p === "$.sources.sft[0].format")).toHaveLength(1);
  });
});
