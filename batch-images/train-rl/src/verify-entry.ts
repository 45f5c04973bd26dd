/** `verify.mjs` in the train-rl image: the verifier service the reward glue talks to (JSON lines on stdin/stdout). */
import { verifyCommand } from "../../../core/verify/lines.ts";

const args = process.argv.slice(2);
const preset = args[args.indexOf("--preset") + 1] === "recipe" ? "recipe" : "strict";
process.exitCode = await verifyCommand({ input: "-", preset, judge: false }, (t) => process.stdout.write(t));
