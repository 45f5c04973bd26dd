/**
 * verl RL configuration from run.json (RECIPE.md stage 2; GSPO, GRPO or DAPO by
 * `training.rl.algorithm`, resolved by the schema): the exact `verl.trainer.main_ppo` Hydra overrides. Pure: the launcher runs what this returns, and `--dry-run` prints it.
 */
import type { RunConfig } from "../config/schema.ts";

export interface VerlPaths {
  trainFiles: string[];
  /** The held-out validation split (core/train/validation.ts), never a training part. */
  valFiles: string[];
  checkpointDir: string;
  rewardPath: string;
  modelPath: string;
}

/** A Hydra override value: quoted when Hydra's grammar would read it as anything but one string. */
function hydraValue(v: string): string {
  return /^[\w./-]+$/.test(v) ? v : `"${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/**
 * verl's Hydra overrides. `workerEnv` (core/train/cluster.ts trainingEnv) goes to verl's
 * `ray_kwargs.ray_init.runtime_env.env_vars`, which Ray applies to every worker on every node.
 */
export function verlOverrides(
  config: RunConfig,
  paths: VerlPaths,
  workerEnv: Record<string, string> = {},
): string[] {
  const t = config.training.rl;
  const list = (xs: string[]) => `[${xs.join(",")}]`;
  const maxTokens = t.maxPromptLength + t.maxResponseLength;
  return [
    `algorithm.adv_estimator=${t.advEstimator}`,
    `actor_rollout_ref.actor.policy_loss.loss_mode=${t.lossMode}`,
    `actor_rollout_ref.actor.loss_agg_mode=${t.lossAggMode}`,
    `data.train_files=${list(paths.trainFiles)}`,
    `data.val_files=${list(paths.valFiles)}`,
    "data.prompt_key=prompt",
    "data.image_key=images",
    "data.return_multi_modal_inputs=True",
    "data.filter_overlong_prompts=True",
    "data.truncation=error",
    "data.shuffle=True",
    `data.train_batch_size=${t.trainBatchSize}`,
    `data.val_batch_size=${t.validationBatchSize}`,
    `data.max_prompt_length=${t.maxPromptLength}`,
    `data.max_response_length=${t.maxResponseLength}`,
    `actor_rollout_ref.model.path=${paths.modelPath}`,
    "actor_rollout_ref.model.use_remove_padding=True",
    "actor_rollout_ref.model.enable_gradient_checkpointing=True",
    `actor_rollout_ref.rollout.n=${t.rolloutsPerPrompt}`,
    "actor_rollout_ref.rollout.name=vllm",
    `actor_rollout_ref.rollout.temperature=${t.rolloutTemperature}`,
    `actor_rollout_ref.rollout.top_p=${t.rolloutTopP}`,
    "actor_rollout_ref.rollout.top_k=-1",
    `actor_rollout_ref.rollout.max_num_batched_tokens=${maxTokens}`,
    `actor_rollout_ref.rollout.tensor_model_parallel_size=${t.rolloutTensorParallelSize}`,
    `actor_rollout_ref.rollout.gpu_memory_utilization=${t.rolloutGpuMemoryUtilization}`,
    // As verl's own Qwen2.5-VL GRPO example: no chunked prefill, no multimodal preprocessor cache.
    "actor_rollout_ref.rollout.enable_chunked_prefill=False",
    "+actor_rollout_ref.rollout.engine_kwargs.vllm.disable_mm_preprocessor_cache=True",
    `actor_rollout_ref.actor.ulysses_sequence_parallel_size=${t.sequenceParallelSize}`,
    `actor_rollout_ref.actor.fsdp_config.param_offload=${t.fsdpOffload ? "True" : "False"}`,
    `actor_rollout_ref.actor.fsdp_config.optimizer_offload=${t.fsdpOffload ? "True" : "False"}`,
    "actor_rollout_ref.ref.fsdp_config.param_offload=True",
    `algorithm.use_kl_in_reward=${t.useKlInReward ? "True" : "False"}`,
    `algorithm.kl_ctrl.kl_coef=${t.useKlInReward ? 0.001 : 0}`,
    `actor_rollout_ref.actor.use_kl_loss=${t.useKlLoss ? "True" : "False"}`,
    `actor_rollout_ref.actor.kl_loss_coef=${t.useKlLoss ? 0.001 : 0}`,
    `actor_rollout_ref.actor.clip_ratio_low=${t.clipRatioLow}`,
    `actor_rollout_ref.actor.clip_ratio_high=${t.clipRatioHigh}`,
    `actor_rollout_ref.actor.optim.lr=${t.learningRate}`,
    `actor_rollout_ref.actor.optim.lr_warmup_steps=${t.warmupSteps}`,
    `actor_rollout_ref.actor.optim.weight_decay=${t.weightDecay}`,
    `actor_rollout_ref.actor.grad_clip=${t.gradClip}`,
    `actor_rollout_ref.actor.entropy_coeff=${t.entropyCoeff}`,
    `actor_rollout_ref.actor.ppo_mini_batch_size=${t.ppoMiniBatchSize}`,
    `actor_rollout_ref.actor.use_dynamic_bsz=${t.dynamicBatchSize ? "True" : "False"}`,
    `actor_rollout_ref.ref.log_prob_use_dynamic_bsz=${t.dynamicBatchSize ? "True" : "False"}`,
    `actor_rollout_ref.rollout.log_prob_use_dynamic_bsz=${t.dynamicBatchSize ? "True" : "False"}`,
    `actor_rollout_ref.actor.ppo_max_token_len_per_gpu=${maxTokens}`,
    `actor_rollout_ref.ref.log_prob_max_token_len_per_gpu=${maxTokens}`,
    `actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=${maxTokens}`,
    // One round trip to the verifier per batch (2,048 responses a step), not one per response.
    "reward_model.reward_manager=batch",
    `custom_reward_function.path=${paths.rewardPath}`,
    "custom_reward_function.name=compute_score_batch",
    `trainer.n_gpus_per_node=${t.gpusPerNode}`,
    `trainer.nnodes=${t.nodes}`,
    `trainer.total_epochs=${t.epochs}`,
    `trainer.total_training_steps=${t.totalSteps}`,
    `trainer.save_freq=${t.saveFreq}`,
    `trainer.max_actor_ckpt_to_keep=${t.maxCheckpointsToKeep}`,
    `trainer.test_freq=${t.testFreq}`,
    `trainer.default_local_dir=${paths.checkpointDir}`,
    "trainer.resume_mode=auto",
    "trainer.val_before_train=False",
    `trainer.project_name=recipe-pipeline`,
    `trainer.experiment_name=${config.runId}`,
    "trainer.logger=[console]",
    ...Object.entries(workerEnv).map(
      ([k, v]) => `+ray_kwargs.ray_init.runtime_env.env_vars.${k}=${hydraValue(v)}`,
    ),
  ];
}

export function verlCommand(
  config: RunConfig,
  paths: VerlPaths,
  workerEnv: Record<string, string> = {},
): string[] {
  return ["python3", "-m", "verl.trainer.main_ppo", ...verlOverrides(config, paths, workerEnv)];
}

/** verl writes `global_step_<n>` folders and a tracker file; the newest step to resume from. */
export function newestCheckpoint(dirs: readonly string[]): number | null {
  let best: number | null = null;
  for (const d of dirs) {
    const m = /(?:^|\/)global_step_(\d+)(?:\/|$)/.exec(d);
    if (m) best = Math.max(best ?? 0, Number(m[1]));
  }
  return best;
}

export const VERL_TRACKER_FILE = "latest_checkpointed_iteration.txt";
