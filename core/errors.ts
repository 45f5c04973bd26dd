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
