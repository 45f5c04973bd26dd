/**
 * Math-Verify's public test suite through our verifier (issue 28): the boxed cases agree with the
 * suite's expected verdict in at least 90 %, and every disagreement is a named policy in
 * tests/fixtures/math-verify-policy.json (only `accepts` policies may say correct where the suite
 * says wrong).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { agreement, boxedCases, loadSuite, runSuite } from "../../bench/verifier/math-verify-suite.ts";

interface Policy {
  policy: string;
  accepts?: boolean;
  note: string;
}
const policies: Record<string, Policy> = JSON.parse(
  readFileSync("tests/fixtures/math-verify-policy.json", "utf8"),
).cases;

describe("Math-Verify's test suite", () => {
  const suite = loadSuite();
  const verdicts = runSuite(boxedCases(suite));
  const disagreements = verdicts.filter((v) => v.ours !== v.expected);

  it("holds every case of the suite with a gold (269), 222 of them boxed", () => {
    expect(suite.length).toBe(269);
    expect(verdicts.length).toBe(222);
  });

  it("agrees with the suite's expected verdict in at least 90 % of the boxed cases", () => {
    expect(agreement(verdicts).rate).toBeGreaterThanOrEqual(0.9);
  });

  it("explains every disagreement by a named policy, and lists no policy for a case that agrees", () => {
    expect(disagreements.filter((d) => !policies[d.id]).map((d) => `${d.id} ${d.reason}`)).toEqual([]);
    expect(Object.keys(policies).filter((id) => !disagreements.some((d) => d.id === id))).toEqual([]);
  });

  it("says correct where the suite says wrong only by a policy that accepts (no false positive)", () => {
    const falsePositives = agreement(verdicts).falsePositives;
    expect(falsePositives.filter((v) => !policies[v.id]?.accepts).map((v) => v.id)).toEqual([]);
  });
});
