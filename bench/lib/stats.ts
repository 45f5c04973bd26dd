/** Small helpers shared by the benchmarks: percentiles, seeded randomness, result files, targets. */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname } from "node:path";
import { mulberry32 } from "../../core/random.ts";

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** A seeded PRNG (mulberry32) so generated workloads are identical from run to run. */
export const seeded = mulberry32;

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return n.toFixed(0);
  if (Math.abs(n) >= 1) return n.toFixed(2);
  return n.toPrecision(3);
}

export function writeResult(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** One measured figure of a bench, with its unit and, when it has one, its target. */
export interface Figure {
  name: string;
  value: number;
  unit: string;
  /** "max": value must be <= limit; "min": value must be >= limit. */
  target?: { kind: "max" | "min"; limit: number };
  pass?: boolean;
}

/**
 * What every bench reports: its figures with units and targets, printed as a table and written as
 * `bench/results/<name>.json` (name, date, machine, settings, figures, pass). A missed target makes
 * the process exit non-zero.
 */
export class BenchReport {
  private readonly figures: Figure[] = [];
  private extra: Record<string, unknown> = {};

  constructor(
    readonly name: string,
    readonly settings: Record<string, unknown> = {},
  ) {}

  /** Records a figure; with a target it is checked when the report is finished. */
  figure(name: string, value: number, unit: string, target?: Figure["target"]): this {
    this.figures.push({ name, value, unit, ...(target ? { target } : {}) });
    return this;
  }

  /** Free-form details kept beside the figures in the JSON file (per-step timings, disagreements). */
  details(extra: Record<string, unknown>): this {
    this.extra = { ...this.extra, ...extra };
    return this;
  }

  /** Prints the figures, writes the JSON file, sets the exit code; returns whether every target passed. */
  finish(): boolean {
    let ok = true;
    console.log("\nfigures");
    for (const f of this.figures) {
      if (f.target) {
        f.pass = f.target.kind === "max" ? f.value <= f.target.limit : f.value >= f.target.limit;
        ok &&= f.pass;
      }
      const target = f.target
        ? ` (target ${f.target.kind === "max" ? "<=" : ">="} ${fmt(f.target.limit)})`
        : "";
      const mark = f.pass === undefined ? "    " : f.pass ? "PASS" : "FAIL";
      console.log(`  ${mark}  ${f.name}: ${fmt(f.value)} ${f.unit}${target}`);
    }
    const path = `bench/results/${this.name}.json`;
    writeResult(path, {
      name: this.name,
      date: new Date().toISOString(),
      machine: machine(),
      settings: this.settings,
      figures: this.figures,
      pass: ok,
      ...(Object.keys(this.extra).length ? { details: this.extra } : {}),
    });
    console.log(`  wrote ${path}`);
    if (!ok) process.exitCode = 1;
    return ok;
  }
}

/** The machine a result was measured on: figures are only comparable on the same one. */
export function machine() {
  const cpu = cpus();
  return {
    cores: cpu.length,
    cpuModel: cpu[0]?.model ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${process.platform}-${process.arch}`,
    node: process.version,
  };
}
