/**
 * Prints, as YAML (JSON flow style), the lmms-engine config the train-sft launcher renders for a
 * run.json with training.sft on: for the GPU image (`cuda`, the recipe's settings) or the CPU check.
 *   node --import tsx tests/images/train-sft/render_config.ts <run.json> <cuda|cpu>
 */
import { readFileSync } from "node:fs";
import { parseRunConfigText } from "../../../core/config/index.ts";
import { type LmmsDevice, lmmsEngineConfig, toYaml } from "../../../core/train/lmms-engine.ts";

const [file, device] = process.argv.slice(2);
if (!file || (device !== "cuda" && device !== "cpu"))
  throw new Error("usage: render_config.ts <run.json> <cuda|cpu>");
const raw = JSON.parse(readFileSync(file, "utf8")) as { training?: { sft?: Record<string, unknown> } };
raw.training = { ...raw.training, sft: { ...raw.training?.sft, enabled: true } };
const parsed = parseRunConfigText(JSON.stringify(raw));
if (!parsed.ok) throw new Error(`${file}: ${JSON.stringify(parsed.problems)}`);
process.stdout.write(
  toYaml(
    lmmsEngineConfig(
      parsed.config.training.sft,
      {
        datasets: [
          {
            path: "/workspace/data/sft/lmms-engine/sft-00000-00000.parquet",
            dataFolder: "/workspace/data/sft",
          },
        ],
        modelPath: "/workspace/model",
        outputDir: "/workspace/output",
      },
      { device: device as LmmsDevice },
    ),
  ),
);
