/**
 * Builds the sample run's SFT and RL datasets into a folder, for the Python loader tests.
 * Usage: node --import tsx tests/python/make_datasets.ts <out-dir>
 */
import { resolve } from "node:path";
import { resolveRunConfig } from "../../core/config/index.ts";
import { keys } from "../../core/layout/index.ts";
import { validateConfig } from "../../core/pipeline/steps.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { runDirect } from "../../local/direct-run.ts";
import { fakeGenerate } from "../helpers/pipeline.ts";

const out = process.argv[2];
if (!out) throw new Error("usage: make_datasets.ts <out-dir>");
const store = new FsStore(out);
const examples = new FsStore(resolve("examples"));
const raw = {
  runId: "py",
  sources: {
    sft: [
      {
        name: "sample-vqa",
        uri: "sample/sft-vqa.jsonl",
        format: "jsonl",
        domain: "general_vqa",
        license: "CC0-1.0",
      },
      {
        name: "sample-text-math",
        uri: "sample/sft-text-math.jsonl",
        format: "jsonl",
        domain: "text_math",
        license: "CC0-1.0",
      },
    ],
    rl: [
      {
        name: "sample-rl",
        uri: "sample/rl-questions.jsonl",
        format: "jsonl",
        domain: "text_math",
        license: "CC0-1.0",
      },
    ],
  },
  verification: { judge: { enabled: false } },
  mixing: { blankImageForTextOnly: true },
};
await store.write(keys.runConfig("py"), JSON.stringify(raw));
await validateConfig(store, "py");
const ctx = {
  store,
  runId: "py",
  config: resolveRunConfig(raw),
  sources: (uri: string) => ({ store: examples, key: uri }),
};
await runDirect(ctx, (c, plan, stage) => fakeGenerate(c, plan, stage, 4).then(() => undefined));
console.log(resolve(out, "runs/py/datasets"));
