/**
 * The validation split of the RL set: a seeded sample of its prompts that training never sees, so
 * verl's "val" score measures held-out prompts. Pure: the launcher streams the rows through it.
 */
import { mulberry32 } from "../random.ts";

/** How many prompts are held out: the configured number, at most a tenth of the set (at least 1). */
export function validationCount(total: number, wanted: number): number {
  if (total < 2) return 0;
  return Math.min(wanted, Math.max(1, Math.floor(total / 10)));
}

/**
 * Positions (0-based, over the RL set's rows in part order) held out for validation: `count` of
 * `total`, chosen by a partial Fisher-Yates shuffle seeded with `seed`.
 */
export function heldOutRows(total: number, count: number, seed: number): Set<number> {
  const n = Math.min(count, total);
  const order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  const next = mulberry32(seed);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(next() * (total - i));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return new Set(order.subarray(0, n));
}
