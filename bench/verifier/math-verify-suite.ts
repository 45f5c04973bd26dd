/**
 * Math-Verify's own test suite (tests/fixtures/math-verify-suite.jsonl: every (gold, prediction,
 * expected) case of its pytest parametrizations, as the suite gives them) run through our verifier.
 *
 * "Boxed cases" are the ones the suite runs with LaTeX extraction (every test but the expr-only
 * number extraction) under Math-Verify's default options. The prediction is given to our verifier
 * as a response with a final answer: as it is when it has a box, else its math boxed (read by the
 * same gold extraction). The gold is given as the suite gives it: reading it is the verifier's job.
 *
 * Math-Verify 0.9.0 passes every case of the suite (checked with pytest); the figure is our
 * agreement with the suite's expected verdict. A false positive is a case we call correct that the
 * suite expects wrong. Each disagreement must carry a named policy in
 * tests/fixtures/math-verify-policy.json.
 */
import { readFileSync } from "node:fs";
import { extractGold } from "../../core/verify/gold.ts";
import { verify } from "../../core/verify/index.ts";

export interface SuiteCase {
  id: string;
  source: string;
  gold: string;
  pred: string;
  expected: boolean;
  latex: boolean;
  options?: Record<string, unknown>;
}

export interface SuiteVerdict extends SuiteCase {
  response: string;
  ours: boolean;
  reason: string;
  extracted: string | null;
}

export function loadSuite(path = "tests/fixtures/math-verify-suite.jsonl"): SuiteCase[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

/**
 * The suite's boxed cases: LaTeX extraction under Math-Verify's default options, with a prediction
 * that is boxed or is a bare answer (math, with at most three words around it). The rest are
 * unformatted prose, whose answer Math-Verify guesses from anchors ("the answer is ..."); our
 * strict preset reads an answer only from a box or an answer tag, by policy.
 */
export function boxedCases(cases: readonly SuiteCase[]): SuiteCase[] {
  return latexCases(cases).filter((c) => hasBox(c.pred) || proseWords(c.pred) <= 3);
}

/** Every case the suite runs with LaTeX extraction under Math-Verify's default options. */
export function latexCases(cases: readonly SuiteCase[]): SuiteCase[] {
  return cases.filter((c) => c.latex && (c.options === undefined || defaultOptions(c.options)));
}

function hasBox(text: string): boolean {
  return /\\(?:boxed|fbox)\s*\{/.test(text);
}

/** Words (two letters or more) outside the math segments of a text. */
function proseWords(text: string): number {
  const outside = text.replace(/\$\$[\s\S]*?\$\$|\$[^$]*\$|\\\[[\s\S]*?\\\]|\\\([\s\S]*?\\\)/g, " ");
  return outside.match(/[A-Za-z]{2,}/g)?.length ?? 0;
}

function defaultOptions(o: Record<string, unknown>): boolean {
  return Object.entries(o).every(
    ([k, v]) =>
      (k === "precision" && v === 6) ||
      (k === "strict" && v === true) ||
      (k === "allow_set_relation_comp" && v === false),
  );
}

/** The prediction as a response: as it is when it has a box, else its answer boxed. */
export function responseOf(pred: string): string {
  if (hasBox(pred)) return pred;
  const read = extractGold(pred);
  // A prediction with math delimiters but no math segment read from them is left unboxed.
  if (!read.ok || (read.via === "plain" && /\$|\\\(|\\\[/.test(pred))) return pred;
  return `\\boxed{${read.answer}}`;
}

export function runSuite(cases: readonly SuiteCase[]): SuiteVerdict[] {
  return cases.map((c) => {
    const response = responseOf(c.pred);
    const v = verify({ response, answer: c.gold }, { preset: "strict" });
    return { ...c, response, ours: v.correct, reason: v.reason, extracted: v.extracted };
  });
}

export function agreement(verdicts: readonly SuiteVerdict[]) {
  const agree = verdicts.filter((v) => v.ours === v.expected).length;
  const falsePositives = verdicts.filter((v) => v.ours && !v.expected);
  return { cases: verdicts.length, agree, rate: agree / Math.max(1, verdicts.length), falsePositives };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const all = runSuite(latexCases(loadSuite()));
  const la = agreement(all);
  console.log(
    `Math-Verify suite, all LaTeX cases: ${la.agree}/${la.cases} agree (${(100 * la.rate).toFixed(1)} %), correct for us and wrong for the suite: ${la.falsePositives.map((v) => v.id).join(", ") || "none"}`,
  );
  const boxed = runSuite(boxedCases(loadSuite()));
  const a = agreement(boxed);
  console.log(
    `Math-Verify suite, boxed cases: ${a.agree}/${a.cases} agree (${(100 * a.rate).toFixed(1)} %), correct for us and wrong for the suite: ${a.falsePositives.map((v) => v.id).join(", ") || "none"} (each must be a policy that accepts)`,
  );
  for (const v of boxed.filter((x) => x.ours !== x.expected)) {
    console.log(
      `  ${v.id} ${v.source.split("::")[1]} expected=${v.expected} ours=${v.reason}\n     gold ${JSON.stringify(v.gold).slice(0, 140)}\n     pred ${JSON.stringify(v.pred).slice(0, 140)}`,
    );
  }
}
