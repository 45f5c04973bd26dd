/**
 * The recipe's evaluation (shared/RECIPE.md "Stage 3"): the benchmarks it reports, as lmms-eval task
 * names, and the averages its paper publishes.
 */

/** The benchmarks the recipe's repository evaluates on, as lmms-eval tasks. */
export const RECIPE_EVAL_TASKS = [
  "mathvista_testmini_cot",
  "mathvision_testmini",
  "mathverse_testmini",
  "mmmu_val",
  "mmmu_pro_standard_cot",
  "mmmu_pro_vision_cot",
  "wemath_testmini",
  "logicvista",
  "dynamath",
  "charxiv_val_descriptive",
  "charxiv_val_reasoning",
  "aime24",
  "aime25",
  "gpqa_diamond_cot_zeroshot",
] as const;
