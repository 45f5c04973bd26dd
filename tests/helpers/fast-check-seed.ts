/**
 * Property tests run with a fixed seed, so CI checks the same cases every time and a failure can be
 * replayed: fast-check prints the seed and path of a counterexample. `FC_SEED=<n>` explores other cases.
 */
import fc from "fast-check";

const seed = Number(process.env.FC_SEED ?? 20261126);
fc.configureGlobal({ seed });
