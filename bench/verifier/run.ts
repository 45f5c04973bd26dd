/**
 * bench/verifier: throughput and latency of the verifier on one core, side by side with Math-Verify
 * (the Python reference library) on the same items in the same run.
 *
 *   npm run bench -- verifier [--mix 20000] [--mv-sample 2000] [--no-math-verify]
 *
 * Targets (issue 4): >= 10x Math-Verify's throughput, p99 <= 10 ms, no item over 100 ms, and no
 * disagreement with Math-Verify on the regression table where our verdict is the wrong one.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Preset, verify } from "../../core/verify/index.ts";
import { BenchReport, fmt, percentile, writeResult } from "../lib/stats.ts";
import { goldRates, printGoldRates } from "./gold-rate.ts";
import { agreement, boxedCases, latexCases, loadSuite, runSuite } from "./math-verify-suite.ts";
import { generateMix, type MixCase } from "./mix.ts";

const { values: args } = parseArgs({
  options: {
    mix: { type: "string", default: "20000" },
    "mv-sample": { type: "string", default: "2000" },
    "no-math-verify": { type: "boolean", default: false },
  },
});

interface TableCase extends MixCase {
  preset?: Preset;
  judge?: boolean;
  note: string;
  expect: { correct: boolean; reason?: string };
}

const MATH_VERIFY_VERSION = "0.9.0";
const VENV = join("bench", ".venv-math-verify");

function loadTable(): TableCase[] {
  return readFileSync("tests/fixtures/verify-cases.jsonl", "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

function timeOurs(items: readonly (MixCase & { preset?: Preset; judge?: boolean })[], rounds: number) {
  const latencies: number[] = [];
  const verdicts = new Map<string, boolean>();
  const start = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const c of items) {
      const t0 = performance.now();
      const v = verify(c, { preset: c.preset ?? "strict", judge: c.judge ?? false });
      latencies.push(performance.now() - t0);
      verdicts.set(c.id, v.correct);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    items: latencies.length,
    perSecond: latencies.length / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? 0,
    verdicts,
  };
}

function ensureMathVerify(): string | null {
  const python = join(VENV, "bin", "python");
  if (!existsSync(python)) {
    console.log(`creating ${VENV} with math-verify==${MATH_VERIFY_VERSION} ...`);
    try {
      execFileSync("python3", ["-m", "venv", VENV], { stdio: "inherit" });
      execFileSync(python, ["-m", "pip", "install", "-q", `math-verify==${MATH_VERIFY_VERSION}`], {
        stdio: "inherit",
      });
    } catch (err) {
      console.log(`Math-Verify unavailable: ${(err as Error).message}`);
      return null;
    }
  }
  return python;
}

function runMathVerify(python: string, items: readonly MixCase[]) {
  const input = items
    .map((c) => JSON.stringify({ id: c.id, response: c.response, answer: c.answer }))
    .join("\n");
  const out = spawnSync(python, ["bench/verifier/math_verify_ref.py"], {
    input,
    encoding: "utf8",
    maxBuffer: 1 << 28,
  });
  if (out.status !== 0) throw new Error(`math-verify run failed: ${out.stderr}`);
  const lines = out.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const summary = lines.pop().summary as { items: number; seconds: number };
  const verdicts = new Map<string, boolean>(lines.map((l) => [l.id, l.correct]));
  return { perSecond: summary.items / summary.seconds, verdicts };
}

const table = loadTable();
const mix = generateMix(Number(args.mix));
console.log(
  `verifier bench: table ${table.length} cases, generated mix ${mix.length} cases, node ${process.version}`,
);

timeOurs(table, 1); // warm-up
const oursTable = timeOurs(table, 5);
const oursMix = timeOurs(mix, 1);
const sample = mix.filter(
  (_, i) => i % Math.max(1, Math.floor(mix.length / Number(args["mv-sample"]))) === 0,
);
const oursSample = timeOurs(sample, 1);

console.log("\nours (one core)");
for (const [name, r] of [
  ["table x5", oursTable],
  ["generated mix", oursMix],
] as const) {
  console.log(
    `  ${name.padEnd(14)} ${fmt(r.perSecond).padStart(8)} verdicts/s  p50 ${fmt(r.p50)} ms  p99 ${fmt(r.p99)} ms  max ${fmt(r.max)} ms`,
  );
}

const report = new BenchReport("verifier", { mix: mix.length, mathVerifySample: sample.length })
  .figure("ours on the table: throughput", oursTable.perSecond, "verdicts/s")
  .figure("ours on the mix: throughput", oursMix.perSecond, "verdicts/s")
  .figure("p99 latency, table and mix", Math.max(oursTable.p99, oursMix.p99), "ms", {
    kind: "max",
    limit: 10,
  })
  .figure("max latency, table and mix", Math.max(oursTable.max, oursMix.max), "ms", {
    kind: "max",
    limit: 100,
  })
  .details({
    table: { cases: table.length, ...strip(oursTable) },
    mix: { cases: mix.length, ...strip(oursMix) },
  });

// Math-Verify's own test suite (issue 28): agreement with its expected verdicts, no false positive.
const suite = loadSuite();
const boxedSuite = agreement(runSuite(boxedCases(suite)));
const latexSuite = agreement(runSuite(latexCases(suite)));
console.log(
  `\nMath-Verify's test suite: boxed cases ${boxedSuite.agree}/${boxedSuite.cases} agree (${fmt(100 * boxedSuite.rate)} %), all LaTeX cases ${latexSuite.agree}/${latexSuite.cases}`,
);
const rates = goldRates();
printGoldRates(rates);
report
  .figure("Math-Verify suite, boxed cases: agreement", 100 * boxedSuite.rate, "%", { kind: "min", limit: 90 })
  .figure("Math-Verify suite, all LaTeX cases: agreement", 100 * latexSuite.rate, "%")
  .figure(
    "Math-Verify suite: accepted where it expects wrong",
    boxedSuite.falsePositives.length,
    "cases (each a policy that accepts)",
  )
  .figure(
    "gold fixtures read to a value",
    (100 * rates.reduce((n, r) => n + r.value, 0)) / rates.reduce((n, r) => n + r.records - r.noAnswer, 0),
    "%",
  )
  .details({
    mathVerifySuite: {
      boxed: { cases: boxedSuite.cases, agree: boxedSuite.agree },
      latex: { cases: latexSuite.cases, agree: latexSuite.agree },
      acceptedWhereExpectedWrong: boxedSuite.falsePositives.map((v) => v.id),
    },
    goldRates: rates,
  });

const python = args["no-math-verify"] ? null : ensureMathVerify();
if (python) {
  const mvTable = runMathVerify(python, table);
  const mvSample = runMathVerify(python, sample);
  const ratioTable = oursTable.perSecond / mvTable.perSecond;
  const ratioSample = oursSample.perSecond / mvSample.perSecond;
  console.log(`\nMath-Verify ${MATH_VERIFY_VERSION} (same items, per-item time inside Python)`);
  console.log(
    `  table          ${fmt(mvTable.perSecond).padStart(8)} verdicts/s   ours/theirs ${fmt(ratioTable)}x`,
  );
  console.log(
    `  mix sample     ${fmt(mvSample.perSecond).padStart(8)} verdicts/s   ours/theirs ${fmt(ratioSample)}x  (${sample.length} items)`,
  );

  const disagreements = table
    .filter((c) => mvTable.verdicts.get(c.id) !== oursTable.verdicts.get(c.id))
    .map((c) => ({
      id: c.id,
      note: c.note,
      answer: c.answer,
      response: c.response.length > 160 ? `${c.response.slice(0, 160)}...` : c.response,
      ours: oursTable.verdicts.get(c.id),
      mathVerify: mvTable.verdicts.get(c.id),
      expected: c.expect.correct,
      oursRight: oursTable.verdicts.get(c.id) === c.expect.correct,
    }));
  const oursWrong = disagreements.filter((d) => !d.oursRight);
  console.log(`\n${disagreements.length} disagreements on the table; ours wrong in ${oursWrong.length}:`);
  for (const d of disagreements) {
    console.log(
      `  ${d.oursRight ? "ours right " : "OURS WRONG "} ${d.id.padEnd(16)} ours=${d.ours} mv=${d.mathVerify}  ${d.note}`,
    );
  }
  writeResult("bench/results/verifier-disagreements.json", disagreements);
  report
    .figure("Math-Verify on the table: throughput", mvTable.perSecond, "verdicts/s")
    .figure("Math-Verify on the mix sample: throughput", mvSample.perSecond, "verdicts/s")
    .figure("throughput vs Math-Verify, table", ratioTable, "x", { kind: "min", limit: 10 })
    .figure("throughput vs Math-Verify, mix sample", ratioSample, "x", { kind: "min", limit: 10 })
    .figure("disagreements with Math-Verify on the table", disagreements.length, "cases")
    .figure("disagreements where ours is wrong", oursWrong.length, "cases", { kind: "max", limit: 0 })
    .details({ mathVerifyVersion: MATH_VERIFY_VERSION });
}

report.finish();

function strip(r: ReturnType<typeof timeOurs>) {
  const { verdicts: _v, ...rest } = r;
  return rest;
}
