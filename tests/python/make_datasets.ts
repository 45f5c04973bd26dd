/**
 * Builds the sample run's SFT and RL datasets into a folder, for the Python loader tests.
 * Usage: node --import tsx tests/python/make_datasets.ts <out-dir>
 */
import { resolve } from "node:path";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { runDirect } from "../../local/direct-run.ts";
import { fakeGenerate, sampleContext } from "../helpers/pipeline.ts";

const out = process.argv[2];
if (!out) throw new Error("usage: make_datasets.ts <out-dir>");
const ctx = await sampleContext({ runId: "py", mixing: { blankImageForTextOnly: true } }, out);
await validateConfig(ctx.store, ctx.runId);
await runDirect(ctx, (c, plan, stage) => fakeGenerate(c, plan, stage, 4).then(() => undefined));
console.log(resolve(out, "runs/py/datasets"));
