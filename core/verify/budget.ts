/**
 * The work one verdict may do, counted in steps (expression nodes evaluated, values compared, digits
 * multiplied), never in milliseconds: the same input gets the same verdict on an idle laptop and on a
 * Lambda sharing its core. A wall-clock guard remains only against a hang, far above any normal item;
 * when it fires that is a defect in the verifier, reported as such, never a quiet "wrong".
 */

/** Steps one verdict may spend. The regression table's largest item spends about 4k. */
export const DEFAULT_STEP_BUDGET = 200_000;
/** Last-resort guard against a hang (seconds, not the 50 ms of a budget). */
export const DEFAULT_HANG_GUARD_MS = 10_000;
/** How many steps pass between two readings of the clock. */
const CLOCK_EVERY = 4096;

/** The step budget ran out: deterministic, so the verdict is `verifier_budget_exceeded` on every machine. */
export class BudgetExceeded extends Error {}
/** The hang guard fired: a verifier defect (the step budget should have stopped it first). */
export class HangGuardFired extends Error {}

export class Budget {
  private left: number;
  private sinceClock = 0;
  private readonly startedAt: number;

  constructor(
    steps = DEFAULT_STEP_BUDGET,
    private readonly guardMs = DEFAULT_HANG_GUARD_MS,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.left = steps;
    this.startedAt = now();
  }

  spend(steps: number): void {
    this.left -= steps;
    if (this.left < 0) throw new BudgetExceeded("step budget spent");
    this.sinceClock += steps;
    if (this.sinceClock >= CLOCK_EVERY) {
      this.sinceClock = 0;
      if (this.now() - this.startedAt > this.guardMs) throw new HangGuardFired("hang guard fired");
    }
  }
}
