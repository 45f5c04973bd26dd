/**
 * One error class per failure kind (STYLE.md). The state machine retries `TransientError`,
 * fails fast on `ConfigError` / `InputContractError`, and treats `InvariantError` as a bug.
 */
import type { ConfigProblem } from "./config/index.ts";

export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `run config is invalid (${problems.length} problem${problems.length === 1 ? "" : "s"}): ` +
        problems.map((p) => `${p.path}: ${p.message}`).join("; "),
    );
  }
}

/** Input that breaks a stage's contract as a whole (not one bad record: that is a reject). */
export class InputContractError extends Error {
  override readonly name = "InputContractError";
}

/** Worth retrying: throttling, a dropped connection, a 5xx. */
export class TransientError extends Error {
  override readonly name = "TransientError";
}

/**
 * A stage's fan-out ended without a result for some shards (their Map children failed within the
 * run's tolerated failure percentage). The stage is not marked done: a rerun computes exactly those.
 */
export class StageIncompleteError extends Error {
  override readonly name = "StageIncomplete";
  constructor(
    readonly stage: string,
    readonly missing: readonly number[],
    readonly expected: number,
  ) {
    const shown =
      missing.slice(0, 20).join(", ") + (missing.length > 20 ? `, ... (${missing.length - 20} more)` : "");
    super(
      `${stage}: ${missing.length} of ${expected} shards have no result (shards ${shown}); their children failed within orchestration.toleratedFailurePercentage, or never ran. In AWS a Map child's error is in the Map's results (tmp/map-results/ in the pipeline bucket) and a GPU job child's in its Batch job log; the embedded runtime fails at a child's first error and shows it. Fix the cause and start the run again: only these shards are computed.`,
    );
  }
}

/** Something that cannot happen unless the code is wrong. */
export class InvariantError extends Error {
  override readonly name = "InvariantError";
}

/**
 * The Batch container contract (DESIGN.md), shared by both GPU images: 0 done, 3 bad input (the job
 * definition fails at once), 75 transient (the job definition retries).
 */
export const EXIT_OK = 0;
export const EXIT_BAD_INPUT = 3;
export const EXIT_TRANSIENT = 75;
