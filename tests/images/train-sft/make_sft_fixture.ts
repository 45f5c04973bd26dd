/**
 * The sample run's SFT set, as write-sft-dataset writes it (the lmms-engine layout's Parquet, its
 * images and the data card), in a folder that stands in for the pipeline bucket, with the run's
 * training.sft settings shrunk to a CPU run of the tiny model: the train-sft launcher reads it like S3.
 *   node --import tsx tests/images/train-sft/make_sft_fixture.ts <out-dir> <tiny model folder>
 * Prints {"bucket", "runId"}.
 */
import { resolve } from "node:path";
import { validateConfig } from "../../../core/pipeline/steps.ts";
import type { FsStore } from "../../../core/shards/fs-store.ts";
import { runDirect } from "../../../local/direct-run.ts";
import { fakeGenerate, sampleContext } from "../../helpers/pipeline.ts";

const [outArg, modelArg] = process.argv.slice(2);
if (!outArg || !modelArg) throw new Error("usage: make_sft_fixture.ts <out-dir> <tiny model folder>");
const ctx = await sampleContext(
  {
    runId: "sft",
    training: {
      sft: {
        enabled: true,
        baseModel: resolve(modelArg),
        // A CPU run: a few short packed sequences, a checkpoint every step.
        packingLength: 2048,
        maxSteps: 1,
        saveSteps: 1,
        saveTotalLimit: 2,
        imageMaxPixels: 200704,
        nodes: 1,
        gpusPerNode: 1,
      },
    },
  } as never,
  resolve(outArg),
);
await validateConfig(ctx.store, ctx.runId);
await runDirect(ctx, (c, plan, stage) => fakeGenerate(c, plan, stage, 4).then(() => undefined));
console.log(JSON.stringify({ bucket: (ctx.store as FsStore).root, runId: ctx.runId }));
