/** The training launchers' command line (train-sft and train-rl): `[--dry-run] [--rows N]`. */
import { parseArgs } from "node:util";

export function parseLauncherArgs(argv: string[]): { dryRun: boolean; rows: number } {
  const { values } = parseArgs({
    args: argv,
    options: { "dry-run": { type: "boolean", default: false }, rows: { type: "string", default: "8" } },
  });
  return { dryRun: values["dry-run"] ?? false, rows: Number(values.rows) };
}
