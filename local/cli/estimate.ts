/** `recipe estimate`: the cost model before a run, from the config and expected question counts. */
import { readFile } from "node:fs/promises";
import { formatProblems, parseRunConfigText } from "../../core/config/index.ts";
import { estimateCost } from "../../core/cost.ts";
import { UsageError } from "./errors.ts";

export interface EstimateOptions {
  sftQuestions: string;
  rlQuestions: string;
  teacherTokens: string;
  rolloutTokens: string;
  tokensPerSecond?: string;
  json?: boolean;
}

/** A numeric option: a finite number, positive (or zero where allowed); anything else is a usage error. */
function count(option: string, value: string, zeroAllowed = false): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0 || (!zeroAllowed && n === 0)) {
    throw new UsageError(
      `${option} must be a ${zeroAllowed ? "non-negative" : "positive"} number, not ${JSON.stringify(value)}`,
    );
  }
  return n;
}

export async function estimateCommand(
  file: string,
  opts: EstimateOptions,
  out: (t: string) => void,
  err: (t: string) => void,
): Promise<number> {
  const parsed = parseRunConfigText(await readFile(file, "utf8"));
  if (!parsed.ok) {
    err(`${file}: INVALID\n${formatProblems(parsed.problems)}\n`);
    return 2;
  }
  const estimate = estimateCost(parsed.config, {
    sftQuestions: count("--sft-questions", opts.sftQuestions, true),
    rlQuestions: count("--rl-questions", opts.rlQuestions, true),
    avgTeacherTokens: count("--teacher-tokens", opts.teacherTokens),
    avgRolloutTokens: count("--rollout-tokens", opts.rolloutTokens),
    tokensPerSecond: opts.tokensPerSecond ? count("--tokens-per-second", opts.tokensPerSecond) : undefined,
  });
  if (opts.json) {
    out(`${JSON.stringify(estimate, null, 2)}\n`);
    return 0;
  }
  out(`${estimate.label}\n\n`);
  const rows = estimate.lines.map((l) => [l.stage, l.hours.toFixed(1), `$${l.usd.toFixed(2)}`, l.what]);
  const widths = [20, 10, 12];
  out(
    `${"stage".padEnd(widths[0]!)}${"wall hours".padStart(widths[1]!)}${"USD".padStart(widths[2]!)}  what\n`,
  );
  for (const r of rows)
    out(`${r[0]!.padEnd(widths[0]!)}${r[1]!.padStart(widths[1]!)}${r[2]!.padStart(widths[2]!)}  ${r[3]}\n`);
  out(
    `${"total".padEnd(widths[0]!)}${"".padStart(widths[1]!)}${`$${estimate.totalUsd.toFixed(2)}`.padStart(widths[2]!)}\n\nassumptions:\n`,
  );
  for (const [k, v] of Object.entries(estimate.assumptions)) out(`  ${k}: ${v}\n`);
  return 0;
}
