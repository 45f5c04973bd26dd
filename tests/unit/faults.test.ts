/**
 * The chaos harness's fault decisions (local/faults.ts): off unless RECIPE_CHAOS is set, and a pure
 * function of the seed and what a request is about, so a failure found reproduces from its seed.
 */
import { describe, expect, it } from "vitest";
import { Chaos, chaosSettings, stageOf } from "../../local/faults.ts";

const requests = Array.from({ length: 2000 }, (_, i) => ["PUT", `/recipe-local/runs/r/distill/shards/${i}`]);

function decisions(seed: number, rate: number, order: string[][]) {
  const c = new Chaos({ seed, rate });
  return new Map(order.map(([m, p]) => [`${m} ${p}`, c.s3(m!, p!)]));
}

describe("fault injection", () => {
  it("is off without RECIPE_CHAOS and refuses a setting it cannot use", () => {
    expect(chaosSettings({})).toBeNull();
    expect(() => chaosSettings({ RECIPE_CHAOS: '{"seed":1,"rate":2}' })).toThrow(/rate in \[0, 1\)/);
  });

  it("decides each request's fault from the seed and the request, whatever order requests arrive in", () => {
    const forward = decisions(7, 0.05, requests);
    const backward = decisions(7, 0.05, [...requests].reverse());
    const other = decisions(8, 0.05, requests);

    expect(backward).toEqual(forward);
    expect(other).not.toEqual(forward);
    const faulted = [...forward.values()].filter(Boolean).length;
    expect(faulted).toBeGreaterThan(50);
    expect(faulted).toBeLessThan(150);
  });

  it("injects nothing at rate 0, and never more than two faults in a row for the same request", () => {
    expect([...decisions(7, 0, requests).values()].filter(Boolean)).toEqual([]);
    const c = new Chaos({ seed: 7, rate: 0.99 });
    const tries = Array.from({ length: 9 }, () => c.s3("GET", "/recipe-local/runs/r/config.json"));
    for (let i = 2; i < tries.length; i++) expect(tries.slice(i - 2, i + 1).every(Boolean)).toBe(false);
  });

  it("asks to be killed at the n-th S3 write of the run's stages, counting no cache entry, upload or read", () => {
    const c = new Chaos({ seed: 1, rate: 0, killAtWrite: 2 });
    const at = [
      c.killHere("PUT", "/recipe-local/cache/generate/ab/x.json"),
      c.killHere("PUT", "/recipe-local/sources/sample/sft-vqa.jsonl"),
      c.killHere("PUT", "/recipe-local/runs/r/run.json"),
      c.killHere("GET", "/recipe-local/runs/r/config.json"),
      c.killHere("PUT", "/recipe-local/runs/r/ingest-sft/shards/00000.jsonl.gz"),
      c.killHere("PUT", "/recipe-local/runs/r/ingest-sft/stats/00000.json"),
      c.killHere("PUT", "/recipe-local/runs/r/ingest-sft/_SUCCESS"),
    ];
    expect(at).toEqual([false, false, false, false, false, true, false]);
  });

  it("names the stage an S3 path is about", () => {
    expect(stageOf("/recipe-local/runs/r/verify-traces/shards/00001.jsonl.gz")).toBe("verify-traces");
    expect(stageOf("/recipe-local/cache/generate/ab/x.json")).toBe("cache");
  });
});
