/**
 * What a valid run config does that the recipe does not, said before anything runs: `recipe
 * validate` prints these, and `recipe run` prints them before it starts (as it does the source
 * column warnings). Pure: the config alone decides them.
 */
import type { RunConfig } from "./schema.ts";

export function configWarnings(config: RunConfig): string[] {
  const warnings: string[] = [];
  const { rl, sft } = config.training;
  // With SFT on, RL starts from its output unless told otherwise (core/train/start-model.ts).
  const start = rl.startModel ?? sft.baseModel;
  if (rl.enabled && !sft.enabled && start === sft.baseModel)
    warnings.push(
      `$.training.rl.startModel: RL starts from the base model ${start}, not from an SFT cold-start checkpoint as the recipe does; set training.sft.enabled to train one in this run (RL then starts from it), or training.rl.startModel to your SFT checkpoint (s3://…)`,
    );
  return warnings;
}
