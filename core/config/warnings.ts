/**
 * What a valid run config does that the recipe does not, said before anything runs: `recipe
 * validate` prints these, and `recipe run` prints them before it starts (as it does the source
 * column warnings). Pure: the config alone decides them.
 */
import { BASE_START_MODEL, type RunConfig } from "./schema.ts";

export function configWarnings(config: RunConfig): string[] {
  const warnings: string[] = [];
  const t = config.training;
  if (t.enabled && t.startModel === BASE_START_MODEL)
    warnings.push(
      `$.training.startModel is the base model ${BASE_START_MODEL}: RL starts from the base model, not from an SFT cold-start checkpoint as the recipe does; set training.startModel to your SFT checkpoint (s3://…)`,
    );
  return warnings;
}
