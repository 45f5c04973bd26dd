/**
 * A bench step in its own process, as Lambda runs a step: the parent starts this same script with
 * `--step <name>`, the child runs that step once and prints its wall time, peak RSS and result as
 * the last line of its output.
 */
import { spawnSync } from "node:child_process";

export interface StepOutcome {
  seconds: number;
  peakRssMiB: number;
  result: unknown;
}

/** Child side: runs the step and exits after printing its outcome. */
export async function runStepHere(step: () => Promise<unknown>): Promise<never> {
  const start = performance.now();
  const result = await step();
  const seconds = (performance.now() - start) / 1000;
  // maxRSS is the process's peak resident set in KiB.
  console.log(JSON.stringify({ seconds, peakRssMiB: process.resourceUsage().maxRSS / 1024, result }));
  process.exit(0);
}

/** Parent side: runs `script --step <name> ...args` in a fresh process and reads its outcome. */
export function runStepProcess(script: string, name: string, args: string[]): StepOutcome {
  const r = spawnSync(process.execPath, ["--import", "tsx", script, "--step", name, ...args], {
    encoding: "utf8",
    maxBuffer: 64 * 2 ** 20,
  });
  if (r.status !== 0) throw new Error(`step ${name} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as StepOutcome;
}
