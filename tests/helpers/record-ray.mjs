// Stands in for the `ray` executable in launcher tests: records the arguments and the environment
// `ray start` was given (which every Ray worker on that node inherits) into $RECIPE_RAY_RECORD, and exits 0.
import { appendFileSync } from "node:fs";

const { NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME, RECIPE_VERIFY_PRESET } = process.env;
appendFileSync(
  process.env.RECIPE_RAY_RECORD,
  `${JSON.stringify({ argv: process.argv.slice(2), env: { NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME, RECIPE_VERIFY_PRESET } })}\n`,
);
