/**
 * Prints, as JSON, the verl overrides the launcher renders for a run.json (training on), for the
 * Python check that composes them against verl's own Hydra config.
 * Usage: node --import tsx tests/python/render_verl.ts <run.json> [training.rl.algorithm]
 */
import { readFileSync } from "node:fs";
import { parseRunConfigText } from "../../core/config/index.ts";
import { trainingEnv } from "../../core/train/cluster.ts";
import { verlOverrides } from "../../core/train/verl.ts";

const file = process.argv[2];
const algorithm = process.argv[3];
if (!file) throw new Error("usage: render_verl.ts <run.json> [training.rl.algorithm]");
const raw = JSON.parse(readFileSync(file, "utf8")) as {
  training?: { rl?: Record<string, unknown> } & Record<string, unknown>;
};
raw.training = {
  ...raw.training,
  rl: { ...raw.training?.rl, enabled: true, ...(algorithm ? { algorithm } : {}) },
};
const parsed = parseRunConfigText(JSON.stringify(raw));
if (!parsed.ok) throw new Error(`${file}: ${JSON.stringify(parsed.problems)}`);
console.log(
  JSON.stringify({
    lossMode: parsed.config.training.rl.lossMode,
    lossAggMode: parsed.config.training.rl.lossAggMode,
    training: parsed.config.training.rl,
    verifyPreset: parsed.config.verification.extractionPreset,
    overrides: verlOverrides(
      parsed.config,
      {
        trainFiles: [
          "/workspace/data/split/train-00000.parquet",
          "/workspace/data/split/train-00001.parquet",
        ],
        valFiles: ["/workspace/data/split/val-00000.parquet"],
        checkpointDir: "/workspace/checkpoints",
        rewardPath: "/opt/recipe/recipe_reward.py",
        modelPath: "/workspace/model",
      },
      // A host with one network interface, eth0 (the launcher reads the real host's).
      trainingEnv(
        {},
        { verifyPreset: parsed.config.verification.extractionPreset },
        { lo: [{ family: "IPv4", internal: true }], eth0: [{ family: "IPv4", internal: false }] },
      ),
    ),
  }),
);
