/**
 * Where RL training starts (issue 24): an explicit `training.rl.startModel` wins; otherwise the
 * run's own SFT cold start `s3://<bucket>/runs/<id>/models/sft/` when `training.sft.enabled` (the
 * recipe's order), else the base model `training.sft.baseModel`. Pure: the launcher, the warnings,
 * the evaluation's `base` model and the report all ask this one function.
 */
import type { RunConfig } from "../config/schema.ts";
import { keys } from "../layout/index.ts";

export type StartModelSource = "explicit" | "sft" | "base";

export interface RlStart {
  /** A model id or an s3:// Hugging Face folder. */
  model: string;
  from: StartModelSource;
}

export function rlStart(config: Pick<RunConfig, "training">, bucket: string, runId: string): RlStart {
  const { rl, sft } = config.training;
  if (rl.startModel !== undefined) return { model: rl.startModel, from: "explicit" };
  if (sft.enabled) return { model: `s3://${bucket}/${keys.modelPrefix(runId, "sft")}`, from: "sft" };
  return { model: sft.baseModel, from: "base" };
}

/** The model RL training starts from (see rlStart). */
export function rlStartModel(config: Pick<RunConfig, "training">, bucket: string, runId: string): string {
  return rlStart(config, bucket, runId).model;
}
