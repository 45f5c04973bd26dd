/** Small helpers shared by the benchmarks: percentiles, seeded randomness, result files, targets. */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** mulberry32: a seeded PRNG so generated workloads are identical from run to run. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Target {
  name: string;
  value: number;
  limit: number;
  /** "max": value must be <= limit; "min": value must be >= limit. */
  kind: "max" | "min";
}

export function checkTargets(targets: readonly Target[]): boolean {
  let ok = true;
  for (const t of targets) {
    const pass = t.kind === "max" ? t.value <= t.limit : t.value >= t.limit;
    ok &&= pass;
    console.log(
      `  ${pass ? "PASS" : "FAIL"}  ${t.name}: ${fmt(t.value)} (target ${t.kind === "max" ? "<=" : ">="} ${fmt(t.limit)})`,
    );
  }
  return ok;
}

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
