/**
 * Every numeric CLI option is parsed with its bounds and refused in one line with exit 2, before
 * anything starts (issue 27, item 5).
 */
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.ts";

async function recipe(...args: string[]) {
  let out = "";
  let err = "";
  const code = await main(["node", "recipe", ...args], { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

describe("numeric options", () => {
  it.each([
    ["run", "examples/run.sample.json", "--parallelism", "zero"],
    ["run", "examples/run.sample.json", "--parallelism", "0"],
    ["run", "examples/run.sample.json", "--parallelism", "-1"],
    ["run", "examples/run.sample.json", "--parallelism", "1.5"],
    ["run", "examples/run.sample.json", "--parallelism", "1000"],
    ["rejects", "sample", "--limit", "abc"],
    ["rejects", "sample", "--limit", "0"],
    ["estimate", "examples/run.sample.json", "--sft-questions", "-5"],
    ["estimate", "examples/run.sample.json", "--teacher-tokens", "2.5"],
    ["estimate", "examples/run.sample.json", "--tokens-per-second", "0"],
    ["estimate", "examples/run.sample.json", "--capacity", "cheap"],
  ])("refuses %s %s %s %s in one line, exit 2", async (...args) => {
    const r = await recipe(...args);

    expect(r.code).toBe(2);
    expect(r.out).toBe("");
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.err).toContain(args[2]!);
  });

  it("accepts a number within the bounds", async () => {
    const r = await recipe("estimate", "examples/run.sample.json", "--sft-questions", "45", "--json");

    expect(r.code, r.err).toBe(0);
  });
});
