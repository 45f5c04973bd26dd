/** `recipe estimate`: the cost model before a run, from the config and expected question counts. */
import { readFile } from "node:fs/promises";
import { deployProblems } from "../core/config/deploy.ts";
import { formatProblems, parseRunConfigText } from "../core/config/index.ts";
import {
  type Capacity,
  DEFAULT_ESTIMATE_INSTANCE,
  estimateCost,
  ON_DEMAND_USD_PER_HOUR,
} from "../core/cost.ts";
import { pricedInstance } from "../core/generate/queues.ts";
import { deployFacts, deploySettings } from "./deploy-settings.ts";
import { UsageError } from "./errors.ts";
import { countSources } from "./source-counts.ts";
import { modelFitProblems } from "./sources.ts";

export interface EstimateOptions {
  sftQuestions?: string;
  rlQuestions?: string;
  teacherTokens: string;
  rolloutTokens: string;
  tokensPerSecond?: string;
  instanceType?: string;
  capacity?: string;
  json?: boolean;
  /** Deploy settings (-c key=value) over cdk.json: the queues priced. */
  context?: string[];
}

const CAPACITIES: Capacity[] = ["spot", "on-demand", "spot-then-on-demand"];

/** The published recipe's question counts (RECIPE.md), used when the sources cannot be counted here. */
const RECIPE_SFT_QUESTIONS = 103_000;
const RECIPE_RL_QUESTIONS = 74_000;

/** 1234567.891 -> "1,234,567.89": figures a person reads, not raw floats. */
function grouped(n: number): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: 2 });
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
  const config = parsed.config;
  const questions = async (
    branch: "sft" | "rl",
    given: string | undefined,
    option: string,
    recipe: number,
  ) => {
    if (given !== undefined) return { n: count(option, given, true), how: `given with ${option}` };
    const counted = await countSources(config, file, branch);
    const traces =
      counted.traces > 0 ? `; ${grouped(counted.traces)} records of traces sources are only verified` : "";
    if (counted.questions !== null)
      return { n: counted.questions, how: `counted in the sources' files, before dedup${traces}` };
    return {
      n: recipe,
      how: `the published recipe's figure: ${counted.unreadable.join(", ")} cannot be read here (pass ${option} N)${traces}`,
    };
  };
  const sft = await questions("sft", opts.sftQuestions, "--sft-questions", RECIPE_SFT_QUESTIONS);
  const rl = config.rl.enabled
    ? await questions("rl", opts.rlQuestions, "--rl-questions", RECIPE_RL_QUESTIONS)
    : { n: 0, how: "RL is disabled" };
  // Each generate job is priced on the queue it runs on: the cheapest instance type (Batch favours
  // the lowest price) of the deployed queue that holds its model (core/generate/queues.ts).
  let instanceType = opts.instanceType;
  let rolloutInstanceType = opts.instanceType;
  if (instanceType === undefined) {
    const facts = deployFacts(deploySettings(opts.context));
    const { problems, queues } = deployProblems(config, { queues: facts.queues });
    if (problems.length > 0) {
      err(`${file}: no deployed GPU queue holds it\n${formatProblems(problems)}\n`);
      return 2;
    }
    const typesOf = (queue: string | undefined) =>
      facts.queues!.find((q) => q.queue === queue) ?? facts.queues!.at(-1)!;
    instanceType = pricedInstance(typesOf(queues?.teacherQueue)) ?? DEFAULT_ESTIMATE_INSTANCE;
    rolloutInstanceType = pricedInstance(typesOf(queues?.policyQueue)) ?? instanceType;
  }
  if (!(instanceType in ON_DEMAND_USD_PER_HOUR))
    throw new UsageError(
      `--instance-type ${JSON.stringify(instanceType)} has no price here; one of ${Object.keys(ON_DEMAND_USD_PER_HOUR).join(", ")}`,
    );
  if (opts.instanceType !== undefined) {
    const misfits = modelFitProblems(config, instanceType);
    if (misfits.length > 0) {
      err(`${file}: cannot run on ${instanceType}\n${formatProblems(misfits)}\n`);
      return 2;
    }
  }
  if (opts.capacity !== undefined && !CAPACITIES.includes(opts.capacity as Capacity))
    throw new UsageError(
      `--capacity must be one of ${CAPACITIES.join(", ")}, not ${JSON.stringify(opts.capacity)}`,
    );
  const estimate = estimateCost(config, {
    instanceType,
    rolloutInstanceType,
    capacity: opts.capacity as Capacity | undefined,
    sftQuestions: sft.n,
    rlQuestions: rl.n,
    avgTeacherTokens: count("--teacher-tokens", opts.teacherTokens),
    avgRolloutTokens: count("--rollout-tokens", opts.rolloutTokens),
    tokensPerSecond: opts.tokensPerSecond ? count("--tokens-per-second", opts.tokensPerSecond) : undefined,
  });
  estimate.assumptions = {
    "SFT questions sent to the teacher": `${grouped(sft.n)} (${sft.how})`,
    "RL questions given rollouts": `${grouped(rl.n)} (${rl.how})`,
    ...estimate.assumptions,
  };
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
  for (const [k, v] of Object.entries(estimate.assumptions))
    out(`  ${k}: ${typeof v === "number" ? grouped(v) : v}\n`);
  return 0;
}
