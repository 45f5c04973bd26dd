/**
 * The benchmark table of `recipe status` and the report: each task by model (base, SFT, RL), from the
 * evaluate job's `runs/<id>/eval/<model>/<task>.json` (core/eval/result.ts), side by side with the
 * paper's number for the task, where one is given, and the difference.
 *
 * The paper's per-task numbers are passed in (`published`); shared/RECIPE.md publishes only averages
 * (core/eval/result.ts PUBLISHED_AVERAGES), which the table's last rows compare with our means.
 */
import { type EvalResult, PUBLISHED_AVERAGES, PUBLISHED_NOTE } from "../eval/result.ts";
import { EVAL_MODELS, type EvalModel, runPrefix } from "../layout/index.ts";
import { type ByteStore, listAll, readJson } from "../shards/byte-store.ts";

export interface EvalCell {
  accuracy: number;
  format: number;
  samples: number;
}

export interface EvalRow {
  task: string;
  /** Each evaluated model's scores (absent: not evaluated on this task). */
  models: Partial<Record<EvalModel, EvalCell>>;
  /** The paper's accuracy for the task, 0..1, where published. */
  published?: number;
  /** The last of RL, SFT, base that was evaluated, minus the paper's, in accuracy points (0..1). */
  difference?: number;
}

/** A published accuracy (0..1) for a task, or undefined. */
export type Published = (task: string) => number | undefined;

const RESULT = /^eval\/(base|sft|rl)\/([A-Za-z0-9][A-Za-z0-9._-]*)\.json$/;

/** Every EvalResult the run has, in model then task order. */
export async function readEvalResults(store: ByteStore, runId: string): Promise<EvalResult[]> {
  const prefix = `${runPrefix(runId)}eval/`;
  const out: EvalResult[] = [];
  for (const key of await listAll(store, prefix)) {
    if (!RESULT.test(key.slice(runPrefix(runId).length))) continue;
    const r = await readJson<EvalResult>(store, key);
    if (r && typeof r.accuracy === "number" && typeof r.task === "string") out.push(r);
  }
  return out.sort(
    (a, b) => EVAL_MODELS.indexOf(a.model) - EVAL_MODELS.indexOf(b.model) || a.task.localeCompare(b.task),
  );
}

/** One row per task (in the order given, then any others by name), and the difference from the paper. */
export function evalRows(
  results: readonly EvalResult[],
  published: Published = () => undefined,
  order: readonly string[] = [],
): EvalRow[] {
  const byTask = new Map<string, EvalRow>();
  for (const r of results) {
    const row = byTask.get(r.task) ?? { task: r.task, models: {} };
    row.models[r.model] = { accuracy: r.accuracy, format: r.format, samples: r.samples };
    byTask.set(r.task, row);
  }
  const rank = (t: string) => (order.includes(t) ? order.indexOf(t) : order.length);
  return [...byTask.values()]
    .sort((a, b) => rank(a.task) - rank(b.task) || a.task.localeCompare(b.task))
    .map((row) => {
      const paper = published(row.task);
      const ours = [...EVAL_MODELS].reverse().find((m) => row.models[m] !== undefined);
      return {
        ...row,
        ...(paper !== undefined ? { published: paper } : {}),
        ...(paper !== undefined && ours ? { difference: row.models[ours]!.accuracy - paper } : {}),
      };
    });
}

/**
 * The mean accuracy per model over the tasks every evaluated model has, so the models compare on the
 * same questions (empty when no task has them all).
 */
export function evalMeans(rows: readonly EvalRow[]): Partial<Record<EvalModel, number>> {
  const models = modelsOf(rows);
  const common = rows.filter((r) => models.every((m) => r.models[m] !== undefined));
  const out: Partial<Record<EvalModel, number>> = {};
  if (common.length === 0) return out;
  for (const m of models) out[m] = common.reduce((a, r) => a + r.models[m]!.accuracy, 0) / common.length;
  return out;
}

/** The paper's published average (0..1) per model, and our mean minus it, where both exist. */
function paperAverages(rows: readonly EvalRow[]) {
  const means = evalMeans(rows);
  const paper: Partial<Record<EvalModel, number>> = {};
  const difference: Partial<Record<EvalModel, number>> = {};
  for (const m of modelsOf(rows)) {
    const published = PUBLISHED_AVERAGES[m];
    if (published === undefined) continue;
    paper[m] = published / 100;
    if (means[m] !== undefined) difference[m] = means[m]! - published / 100;
  }
  return { means, paper, difference };
}

const pct = (v: number | undefined) => (v === undefined ? "-" : (100 * v).toFixed(1));
const signed = (v: number | undefined) =>
  v === undefined ? "-" : `${v >= 0 ? "+" : ""}${(100 * v).toFixed(1)}`;

/** The models any row has, in EVAL_MODELS order. */
function modelsOf(rows: readonly EvalRow[]): EvalModel[] {
  return EVAL_MODELS.filter((m) => rows.some((r) => r.models[m] !== undefined));
}

const HEADER: Record<EvalModel, string> = { base: "base", sft: "SFT", rl: "RL" };

/** The table as text (`recipe status`): accuracy in %, the paper's and the difference in points. */
export function evalTableText(rows: readonly EvalRow[]): string {
  if (rows.length === 0) return "";
  const models = modelsOf(rows);
  const head = ["benchmark", ...models.map((m) => HEADER[m]), "paper", "diff"];
  const body = rows.map((r) => [
    r.task,
    ...models.map((m) => pct(r.models[m]?.accuracy)),
    pct(r.published),
    signed(r.difference),
  ]);
  const { means, paper, difference } = paperAverages(rows);
  body.push(["mean (tasks all have)", ...models.map((m) => pct(means[m])), "", ""]);
  body.push(["paper average", ...models.map((m) => pct(paper[m])), "", ""]);
  body.push(["mean - paper", ...models.map((m) => signed(difference[m])), "", ""]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return `${[line(head), ...body.map(line)].join("\n")}\n(accuracy %, scored by this project's verifier; paper, diff: the published number of a task where one is given, and the last model trained minus it, in points; ${PUBLISHED_NOTE})\n`;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

/** The table as HTML (the report). */
export function evalTableHtml(rows: readonly EvalRow[]): string {
  if (rows.length === 0) return "<p>no model evaluated in this run</p>";
  const models = modelsOf(rows);
  const { means, paper, difference } = paperAverages(rows);
  const cell = (c: EvalCell | undefined) =>
    c === undefined
      ? "<td>-</td>"
      : `<td title="format ${pct(c.format)}%, ${c.samples} questions">${pct(c.accuracy)}</td>`;
  return `<table><tr><th>benchmark</th>${models.map((m) => `<th>${HEADER[m]}</th>`).join("")}<th>paper</th><th>difference</th></tr>${rows
    .map(
      (r) =>
        `<tr><td>${esc(r.task)}</td>${models.map((m) => cell(r.models[m])).join("")}<td>${pct(r.published)}</td><td>${signed(r.difference)}</td></tr>`,
    )
    .join(
      "",
    )}<tr><td>mean (tasks all have)</td>${models.map((m) => `<td>${pct(means[m])}</td>`).join("")}<td></td><td></td></tr><tr><td>paper average</td>${models.map((m) => `<td>${pct(paper[m])}</td>`).join("")}<td></td><td></td></tr><tr><td>mean - paper</td>${models.map((m) => `<td>${signed(difference[m])}</td>`).join("")}<td></td><td></td></tr></table><p class="legend">Accuracy in %, every answer scored by this project's verifier (the judge deciding what it leaves undecided); hover a score for its format score and question count. Paper, difference: a task's published number where one is given, and the last model trained minus it, in points; ${esc(PUBLISHED_NOTE)}.</p>`;
}
