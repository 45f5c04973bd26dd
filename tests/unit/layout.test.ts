import { describe, expect, it } from "vitest";
import { InvariantError } from "../../core/errors.ts";
import { keys, runIdFromConfigKey } from "../../core/layout/index.ts";

const SHA = "ab".repeat(32);

describe("S3 layout", () => {
  it("builds the stage keys of DESIGN.md", () => {
    expect(keys.runConfig("r1")).toBe("runs/r1/run.json");
    expect(keys.resolvedConfig("r1")).toBe("runs/r1/config.json");
    expect(keys.shard("r1", "verify-traces", 7)).toBe("runs/r1/verify-traces/shards/00007.jsonl.gz");
    expect(keys.rejects("r1", "verify-traces", 7)).toBe("runs/r1/verify-traces/rejects/00007.jsonl.gz");
    expect(keys.stats("r1", "verify-traces", 7)).toBe("runs/r1/verify-traces/stats/00007.json");
    expect(keys.success("r1", "distill")).toBe("runs/r1/distill/_SUCCESS");
    expect(keys.dataset("r1", "sft", "README.md")).toBe("runs/r1/datasets/sft/README.md");
    expect(keys.report("r1", "report.html")).toBe("runs/r1/report/report.html");
    expect(keys.generationCache(SHA)).toBe(`cache/generate/ab/${SHA}.json`);
  });

  it("refuses run ids and file names that would escape their prefix", () => {
    expect(() => keys.runConfig("../other")).toThrow(InvariantError);
    expect(() => keys.dataset("r1", "sft", "../x")).toThrow(InvariantError);
    expect(() => keys.generationCache("not-a-hash")).toThrow(InvariantError);
  });

  it("refuses shard indexes past five digits", () => {
    expect(() => keys.shard("r1", "distill", 100000)).toThrow(InvariantError);
  });

  it("reads the run id back from an uploaded run.json key only", () => {
    expect(runIdFromConfigKey("runs/abc-1/run.json")).toBe("abc-1");
    expect(runIdFromConfigKey("runs/abc-1/config.json")).toBeNull();
    expect(runIdFromConfigKey("runs/a/b/run.json")).toBeNull();
  });
});
