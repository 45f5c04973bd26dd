import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { deployProblems } from "../core/config/deploy.ts";
import { formatProblems, parseRunConfigText } from "../core/config/index.ts";
import { configWarnings } from "../core/config/warnings.ts";
import { PROJECT_ROOT } from "../infra/root.ts";
import { deployFacts, deploySettings } from "./deploy-settings.ts";
import { debugRequested, describeError } from "./errors.ts";
import type { EstimateOptions } from "./estimate.ts";
import type { RejectsOptions } from "./rejects.ts";
import type { RunCommandOptions, StatusOptions } from "./run.ts";
import { modelFitProblems, sourceProblems } from "./sources.ts";

/** Exit codes: 0 ok, 1 failure, 2 invalid input (config or arguments). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_INVALID = 2;

export const DOCS_REFERENCE = "docs/run-config.md";
export const DOCS_SCHEMA = "docs/run.schema.json";

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

async function validateCommand(
  file: string,
  opts: { quiet?: boolean; remote?: boolean; instanceType?: string; context?: string[] },
  io: Io,
): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    io.err(`cannot read ${file}: ${(err as Error).message}\n`);
    return EXIT_INVALID;
  }
  const result = parseRunConfigText(text);
  const local = result.ok && !opts.remote ? sourceProblems(result.config, file) : [];
  const problems = result.ok
    ? [
        ...local,
        // The first rows' image paths, once every local source exists.
        ...(result.ok && !opts.remote && local.length === 0
          ? await (await import("./source-images.ts")).sourceImageProblems(result.config, file)
          : []),
        ...(opts.instanceType ? modelFitProblems(result.config, opts.instanceType) : []),
        // Against the stack cdk.json and -c describe: the GPU queue that holds each model, the hosts
        // its keys are bound to (what validate-config refuses at run start).
        ...deployProblems(result.config, deployFacts(deploySettings(opts.context))).problems,
      ]
    : result.problems;
  if (!result.ok || problems.length > 0) {
    io.err(`${file}: INVALID, ${problems.length} problem(s)\n${formatProblems(problems)}\n`);
    return EXIT_INVALID;
  }
  io.out(`${file}: OK\n`);
  for (const w of configWarnings(result.config)) io.err(`warning: ${w}\n`);
  if (!opts.remote)
    for (const w of await (await import("./source-columns.ts")).sourceColumnWarnings(result.config, file))
      io.err(`warning: ${w}\n`);
  if (!opts.quiet) io.out(`${JSON.stringify(result.config, null, 2)}\n`);
  return EXIT_OK;
}

async function docsCommand(opts: { write?: boolean }, io: Io): Promise<number> {
  const { runConfigJsonSchema, runConfigReference } = await import("../core/config/reference.ts");
  const reference = runConfigReference();
  const schema = `${JSON.stringify(runConfigJsonSchema(), null, 2)}\n`;
  if (opts.write) {
    await writeFile(join(PROJECT_ROOT, DOCS_REFERENCE), reference);
    await writeFile(join(PROJECT_ROOT, DOCS_SCHEMA), schema);
    io.out(`wrote ${DOCS_REFERENCE} and ${DOCS_SCHEMA}\n`);
  } else {
    io.out(reference);
  }
  return EXIT_OK;
}

/**
 * A numeric option's parser: refuses (one line, exit 2) anything but a number within its bounds,
 * whole where it counts something; returns the value as given, which the command reads.
 */
export function numberIn(min: number, max: number, whole = true): (value: string) => string {
  return (value) => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || (whole && !Number.isInteger(n)) || n < min || n > max)
      throw new InvalidArgumentError(
        `expected a ${whole ? "whole number" : "number"} from ${min.toLocaleString("en-US")} to ${max.toLocaleString("en-US")}.`,
      );
    return value.trim();
  };
}

/** Batch array children one machine runs at once. */
export const MAX_PARALLELISM = 64;

export function buildProgram(io: Io, setCode: (code: number) => void): Command {
  const program = new Command("recipe")
    .description("recipe-pipeline: verified reasoning data from a teacher model, and GSPO RL sets, on AWS")
    .exitOverride()
    .option("--debug", "show stack traces of errors")
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  program
    .command("validate")
    .description("check a run.json; print the resolved config, or every problem with its JSON path (exit 2)")
    .argument("<run.json>", "the run config")
    .option("-q, --quiet", "print only OK, not the resolved config")
    .option(
      "--remote",
      "do not check that local source files exist (relative paths name s3://<bucket>/sources/)",
    )
    .option(
      "--instance-type <type>",
      "also check that the teacher and the policy fit this deployed GPU instance type (e.g. g6e.48xlarge)",
    )
    .option(
      "-c, --context <key=value...>",
      "deploy settings as given to cdk deploy (over cdk.json): the run must fit the stack they describe",
    )
    .action(
      async (
        file: string,
        opts: { quiet?: boolean; remote?: boolean; instanceType?: string; context?: string[] },
      ) => setCode(await validateCommand(file, opts, io)),
    );

  program
    .command("docs")
    .description(`print the run.json reference generated from the schema (--write updates ${DOCS_REFERENCE})`)
    .option("--write", `write ${DOCS_REFERENCE} and ${DOCS_SCHEMA}`)
    .action(async (opts: { write?: boolean }) => setCode(await docsCommand(opts, io)));

  program
    .command("verify")
    .description("verify responses against gold answers: JSON lines in, one verdict line out per input line")
    .requiredOption(
      "--input <file>",
      "JSON lines {id, response, answer, choices?, answerType?}; '-' reads stdin",
    )
    .addOption(
      new Option("--preset <preset>", "answer extraction preset")
        .choices(["strict", "recipe"])
        .default("strict"),
    )
    .option("--judge", "report answers the rules cannot decide as 'undecided' (for an LLM judge)", false)
    .action(async (opts: { input: string; preset: "strict" | "recipe"; judge: boolean }) => {
      try {
        setCode(await (await import("../core/verify/lines.ts")).verifyCommand(opts, io.out));
      } catch (err) {
        io.err(`cannot read ${opts.input}: ${(err as Error).message}\n`);
        setCode(EXIT_INVALID);
      }
    });

  program
    .command("run")
    .description(
      "run a run.json end to end on this machine: S3 emulator, the synthesized state machine, local GPU-job stand-ins",
    )
    .argument("<run.json>", "the run config (relative source paths are uploaded from its folder)")
    .option(
      "--teacher-url <url>",
      "an OpenAI-compatible endpoint for the teacher (default: the bundled replay server)",
    )
    .option(
      "--teacher-model <id>",
      "model id that --teacher-url serves (written into the run's config as teacher.model, and rl.policyModel: locally one endpoint answers both)",
    )
    .option("--api-key-env <name>", "environment variable holding the endpoint's API key")
    .addOption(
      new Option(
        "--teacher <kind>",
        "without --teacher-url, the bundled teacher: replay (recorded answers to the sample's questions) or synthetic (answers your own questions from their gold answers, a seeded mix of right and wrong; not for training)",
      )
        .choices(["replay", "synthetic"])
        .conflicts("teacherUrl"),
    )
    .option("--data-dir <dir>", "where the emulator keeps its data", ".recipe")
    .option(
      "--parallelism <n>",
      `Batch array children run at once (1 to ${MAX_PARALLELISM})`,
      numberIn(1, MAX_PARALLELISM),
      "2",
    )
    .option(
      "--fresh",
      "forget this run first (its outputs and execution); other runs and the generation cache are kept. Not needed after a change: stages whose inputs changed are recomputed anyway",
    )
    .action(async (file: string, opts: RunCommandOptions) =>
      setCode(await (await import("./run.ts")).runCommand(file, opts, io.out, io.err)),
    );

  program
    .command("status")
    .description("show a run's execution state and per-stage counts (local, or in AWS with --bucket)")
    .argument("<run-id>")
    .option("--bucket <name>", "the deployed pipeline bucket (AWS)")
    .option("--state-machine-arn <arn>", "the deployed state machine, <stack>-run (AWS; a stack output)")
    .option("--data-dir <dir>", "the local runtime's data directory", ".recipe")
    .action(async (runId: string, opts: StatusOptions) =>
      setCode(await (await import("./run.ts")).statusCommand(runId, opts, io.out, io.err)),
    );

  program
    .command("rejects")
    .description("print a run's rejected records as JSON lines: stage, reason, source file and line, detail")
    .argument("<run-id>")
    .option("--stage <stage>", "only this stage's rejects")
    .option("--reason <code>", "only rejects with this reason code")
    .option("--limit <n>", "print at most this many", numberIn(1, 1_000_000), "100")
    .option("--bucket <name>", "the deployed pipeline bucket (AWS)")
    .option("--data-dir <dir>", "the local runtime's data directory", ".recipe")
    .action(async (runId: string, opts: RejectsOptions) =>
      setCode(await (await import("./rejects.ts")).rejectsCommand(runId, opts, io.out, io.err)),
    );

  program
    .command("submit")
    .description(
      "validate run.json and upload it to runs/<run-id>/run.json in the deployed bucket (starts the run)",
    )
    .argument("<run.json>")
    .requiredOption("--bucket <name>", "the pipeline bucket (stack output BucketName)")
    .action(async (file: string, opts: { bucket: string }) =>
      setCode(await (await import("./run.ts")).submitCommand(file, opts, io.out, io.err)),
    );

  program
    .command("estimate")
    .description(
      "estimate GPU hours and cost of a run before starting it (an estimate, with its assumptions)",
    )
    .argument("<run.json>", "the run config")
    .option(
      "--sft-questions <n>",
      "SFT questions sent to the teacher (default: counted in the sources' files)",
      numberIn(0, 1e9),
    )
    .option(
      "--rl-questions <n>",
      "RL questions given rollouts (default: counted in the sources' files)",
      numberIn(0, 1e9),
    )
    .option("--teacher-tokens <n>", "average teacher response tokens", numberIn(1, 1e6), "2000")
    .option("--rollout-tokens <n>", "average rollout tokens", numberIn(1, 1e6), "1500")
    .option(
      "--tokens-per-second <n>",
      "output tokens per second one generate job sustains",
      numberIn(0.001, 1e7, false),
    )
    .option(
      "--instance-type <type>",
      "price every generate job on this instance type (default: each on the cheapest type of the deployed queue that holds its model)",
    )
    .option(
      "-c, --context <key=value...>",
      "deploy settings as given to cdk deploy (over cdk.json): the queues whose instance types are priced",
    )
    .addOption(
      new Option(
        "--capacity <c>",
        "spot-then-on-demand (default; priced on demand), spot or on-demand",
      ).choices(["spot", "on-demand", "spot-then-on-demand"]),
    )
    .option("--json", "print the estimate as JSON")
    .action(async (file: string, opts: EstimateOptions) =>
      setCode(await (await import("./estimate.ts")).estimateCommand(file, opts, io.out, io.err)),
    );

  return program;
}

export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  let code = EXIT_OK;
  const program = buildProgram(io, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_INVALID;
    const d = describeError(err);
    io.err(`error: ${d.message}\n`);
    if (debugRequested(argv)) io.err(`${(err as Error)?.stack ?? String(err)}\n`);
    return d.code;
  }
  return code;
}
