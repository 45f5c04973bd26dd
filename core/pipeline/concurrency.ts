/**
 * How many Lambda children each Distributed Map may run at once, from the account's Lambda
 * concurrency (GetAccountSettings' UnreservedConcurrentExecutions). New accounts often have 10; a Map
 * defaults to far more, and the SFT and RL branches each run a Map at the same time. Each Map gets an
 * equal share of what is left after a headroom for the steps that run beside them (a plan or finish
 * step in the other branch, start-run, another stack's functions), so that together they stay under
 * the limit; a run's own `orchestration.mapMaxConcurrency` lowers it further.
 */

/** Distributed Maps that can run at the same time: one per branch of the SftAndRl Parallel. */
export const CONCURRENT_MAPS = 2;

/** Concurrency kept free of the Maps: at least 2, or a tenth of the limit. */
export function concurrencyHeadroom(unreserved: number): number {
  return Math.max(2, Math.ceil(unreserved * 0.1));
}

/** Each Map's MaxConcurrency: never 0 (a Map of 0 means "no limit" to Step Functions). */
export function mapConcurrencyCap(unreserved: number, requested: number): number {
  const share = Math.floor((unreserved - concurrencyHeadroom(unreserved)) / CONCURRENT_MAPS);
  return Math.max(1, Math.min(requested, share));
}
