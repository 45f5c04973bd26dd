/**
 * The recipe's evaluation (shared/RECIPE.md "Stage 3") as lmms-eval tasks this project defines: each
 * benchmark's Hugging Face dataset, split and columns, rendered into an lmms-eval task YAML whose
 * `process_results` scores every answer with this project's verifier (batch-images/evaluate/tasks/
 * recipe_eval_utils.py). Pure: the evaluate launcher writes what this renders; tests check it.
 *
 * The datasets, splits and columns are those of lmms-eval 0.5.0's own definitions of the same
 * benchmarks (lmms_eval/tasks/<name>/*.yaml and utils.py): the recipe's repository evaluates with its
 * own task definitions over the same Hub datasets. Our tasks carry a `recipe_` prefix because
 * lmms-eval indexes its own tasks first and a task of the same name under --include_path would be
 * ignored (lmms_eval/tasks/__init__.py, initialize_tasks).
 *
 * Not defined here (yet): WeMath, LogicVista, DynaMath, CharXiv and the text benchmarks (AIME, GPQA)
 * the recipe also reports: lmms-eval 0.5.0 has no definition of the first three to take the columns
 * from, and the others' columns were not checked against their datasets.
 */

export interface EvalBenchmark {
  /** Our lmms-eval task name (the YAML's `task:`, the result file's name). */
  task: string;
  /** How the report names it. */
  title: string;
  /** lmms-eval 0.5.0's own task over the same data, which this follows. */
  lmmsEvalTask: string;
  dataset: { path: string; name?: string; split: string };
  columns: {
    /** A stable id per question. */
    id: string;
    /** The question text shown to the model. */
    question: string;
    /** The gold answer (a letter for multiple choice, else the value). */
    answer: string;
    /** Image columns (PIL images in the dataset), in order; empty for a text benchmark. */
    images: string[];
    /** The options, when the benchmark has them: a list, or a Python list literal as text (MMMU). */
    choices?: string;
  };
  /** Whether the gold answer is an option's letter (A, B, ...) rather than its content. */
  choiceAnswer: "letter" | "content" | "none";
}

export const EVAL_BENCHMARKS: readonly EvalBenchmark[] = [
  {
    task: "recipe_mathvista_testmini",
    title: "MathVista testmini",
    lmmsEvalTask: "mathvista_testmini_cot",
    dataset: { path: "AI4Math/MathVista", split: "testmini" },
    // MathVista's gold is the option's content for multiple choice (`answer` in `choices`).
    columns: {
      id: "pid",
      question: "question",
      answer: "answer",
      images: ["decoded_image"],
      choices: "choices",
    },
    choiceAnswer: "content",
  },
  {
    task: "recipe_mathvision_testmini",
    title: "MathVision testmini",
    lmmsEvalTask: "mathvision_testmini",
    dataset: { path: "MathLLMs/MathVision", split: "testmini" },
    columns: {
      id: "id",
      question: "question",
      answer: "answer",
      images: ["decoded_image"],
      choices: "options",
    },
    choiceAnswer: "letter",
  },
  {
    task: "recipe_mathverse_testmini",
    title: "MathVerse testmini",
    lmmsEvalTask: "mathverse_testmini",
    dataset: { path: "CaraJ/MathVerse-lmmseval", name: "testmini", split: "testmini" },
    // `question` holds the options inline for multiple choice; the gold is their letter.
    columns: { id: "sample_index", question: "question", answer: "answer", images: ["image"] },
    choiceAnswer: "letter",
  },
  {
    task: "recipe_mmmu_val",
    title: "MMMU val",
    lmmsEvalTask: "mmmu_val_reasoning",
    dataset: { path: "lmms-lab/MMMU", split: "validation" },
    columns: {
      id: "id",
      question: "question",
      answer: "answer",
      images: ["image_1", "image_2", "image_3", "image_4", "image_5", "image_6", "image_7"],
      choices: "options",
    },
    choiceAnswer: "letter",
  },
  {
    task: "recipe_mmmu_pro_standard",
    title: "MMMU-Pro standard",
    lmmsEvalTask: "mmmu_pro_standard_cot",
    dataset: { path: "MMMU/MMMU_Pro", name: "standard (10 options)", split: "test" },
    columns: {
      id: "id",
      question: "question",
      answer: "answer",
      images: ["image_1", "image_2", "image_3", "image_4", "image_5", "image_6", "image_7"],
      choices: "options",
    },
    choiceAnswer: "letter",
  },
  {
    task: "recipe_mmmu_pro_vision",
    title: "MMMU-Pro vision",
    lmmsEvalTask: "mmmu_pro_vision_cot",
    // The question and its options are in the image: the text is only the instruction.
    dataset: { path: "MMMU/MMMU_Pro", name: "vision", split: "test" },
    columns: { id: "id", question: "", answer: "answer", images: ["image"], choices: "options" },
    choiceAnswer: "letter",
  },
];

/** Every task this project defines (what `evaluation.tasks` may name). */
export const EVAL_TASK_NAMES = [
  "recipe_mathvista_testmini",
  "recipe_mathvision_testmini",
  "recipe_mathverse_testmini",
  "recipe_mmmu_val",
  "recipe_mmmu_pro_standard",
  "recipe_mmmu_pro_vision",
] as const;

/** The benchmarks the evaluate job runs by default: every one defined. */
export const RECIPE_EVAL_TASKS = EVAL_TASK_NAMES;

export function evalBenchmark(task: string): EvalBenchmark | undefined {
  return EVAL_BENCHMARKS.find((b) => b.task === task);
}

/** Problems with `evaluation.tasks`: names this project has no definition for. */
export function unknownTasks(tasks: readonly string[]): string[] {
  return tasks
    .filter((t) => !evalBenchmark(t))
    .map(
      (t) =>
        `evaluation.tasks: "${t}" is not one of this project's task definitions (scored by its verifier): ${EVAL_BENCHMARKS.map((b) => b.task).join(", ")}`,
    );
}

export interface TaskYamlSettings {
  maxNewTokens: number;
  /** The instruction shown before each question (the run's system prompt: the trained format). */
  instruction: string;
  /** A local dataset folder in place of the Hub's (tests, a pre-downloaded copy). */
  datasetPath?: string;
}

/** JSON is YAML: every scalar written as a JSON string is read back as that string. */
const q = (s: string) => JSON.stringify(s);

/**
 * The lmms-eval task YAML of one benchmark. Its functions live in `<task>.py` beside it (see
 * `taskModule`): lmms-eval resolves `!function m.f` to `m.py` next to the YAML. Greedy decoding,
 * as the recipe's evaluation; accuracy and format are the means of per-answer 0/1 and format scores.
 */
export function renderTaskYaml(b: EvalBenchmark, s: TaskYamlSettings): string {
  const m = b.task;
  const dataset = s.datasetPath ?? b.dataset.path;
  return [
    `# ${b.title}: rendered by core/eval/tasks.ts (recipe-pipeline); scored by the project's verifier.`,
    `task: ${q(b.task)}`,
    `dataset_path: ${q(dataset)}`,
    ...(b.dataset.name && s.datasetPath === undefined ? [`dataset_name: ${q(b.dataset.name)}`] : []),
    `test_split: ${q(b.dataset.split)}`,
    "output_type: generate_until",
    `doc_to_visual: !function ${m}.doc_to_visual`,
    `doc_to_text: !function ${m}.doc_to_text`,
    `doc_to_target: ${q(b.columns.answer)}`,
    "generation_kwargs:",
    `  max_new_tokens: ${s.maxNewTokens}`,
    "  temperature: 0",
    "  do_sample: false",
    `process_results: !function ${m}.process_results`,
    "metric_list:",
    "  - metric: acc_score",
    "    aggregation: mean",
    "    higher_is_better: true",
    "  - metric: format_score",
    "    aggregation: mean",
    "    higher_is_better: true",
    "  - metric: verdict",
    `    aggregation: !function ${m}.judged_count`,
    "    higher_is_better: true",
    "lmms_eval_specific_kwargs:",
    "  default:",
    `    pre_prompt: ${q(`${s.instruction}\n\n`)}`,
    `    post_prompt: ""`,
    "metadata:",
    "  version: 1.0",
    "",
  ].join("\n");
}

/** `<task>.py` beside the YAML: binds the shared scoring module to this benchmark's columns. */
export function taskModule(b: EvalBenchmark): string {
  const spec = JSON.stringify({ task: b.task, columns: b.columns, choiceAnswer: b.choiceAnswer });
  return [
    `"""${b.title}: rendered by core/eval/tasks.ts (recipe-pipeline)."""`,
    "import json",
    "import os",
    "import sys",
    "",
    "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))",
    "from recipe_eval_utils import bind  # noqa: E402",
    "",
    `_spec = json.loads(${JSON.stringify(spec)})`,
    "doc_to_visual, doc_to_text, process_results, judged_count = bind(_spec)",
    "",
  ].join("\n");
}
