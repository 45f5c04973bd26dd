/** When and how `npm run chaos` kills: drawn from the seed and what is left to do, never the clock. */
import { uniform } from "../../local/faults.ts";

export type Kill = {
  kind: "sigkill" | "sigint" | "batch-child";
  trigger: "teacher" | "s3-write";
  at: number;
};

/**
 * The i-th kill, from the seed and what is left to do: its kind, and the event it lands at, drawn
 * within the work that remains (teacher requests not yet answered, run objects not yet written),
 * spread over the kills that remain so that they all land before the run can finish.
 *
 * `midAttempt`: drawn while an attempt runs (after a Batch child kill, which does not end it). The
 * attempt's S3-write kill was fixed when it started (RECIPE_CHAOS), so this kill is armed on the
 * teacher; with no teacher work left it waits for the next attempt (null).
 */
export function killAt(
  seed: number,
  i: number,
  killsLeft: number,
  teacherLeft: number,
  writesLeft: number,
  midAttempt = false,
): Kill | null {
  const k = uniform(seed, "kill-kind", i);
  let kind: Kill["kind"] = k < 0.45 ? "sigkill" : k < 0.7 ? "sigint" : "batch-child";
  let trigger: Kill["trigger"] =
    kind === "batch-child" || midAttempt || uniform(seed, "kill-trigger", i) < 0.5 ? "teacher" : "s3-write";
  if (teacherLeft <= 0) {
    if (midAttempt) return null;
    // The teacher's work is done: the kill lands on an S3 write, and a Batch child kill (there are no
    // generate children left) becomes a SIGKILL of the group.
    trigger = "s3-write";
    if (kind === "batch-child") kind = "sigkill";
  }
  const left = Math.max(1, trigger === "teacher" ? teacherLeft : writesLeft);
  const span = Math.max(1, Math.min(left, Math.floor((2 * left) / Math.max(1, killsLeft))));
  return { kind, trigger, at: 1 + Math.floor(uniform(seed, "kill-at", i) * span) };
}
