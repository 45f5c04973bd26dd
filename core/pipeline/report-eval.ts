/**
 * The benchmark table of `recipe status` and the report: each task by model (base, SFT, RL), from the
 * evaluate job's `runs/<id>/eval/<model>/<task>.json` (core/eval/result.ts), side by side with the
 * paper's number for the task, where one is given, and the difference.
 *
 * The paper's numbers are passed in (`published`): the table of them belongs with the evaluation
 * code (core/eval); until that lands nothing is published here and the columns say so.
 */
import type { EvalResult } from "../eval/result.ts";
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

/** The mean accuracy per model over the tasks every one of them was evaluated on. */
export function evalMeans(rows: readonly EvalRow[]): Partial<Record<EvalModel, number>> {
  const out: Partial<Record<EvalModel, number>> = {};
  for (const m of EVAL_MODELS) {
    const cells = rows.map((r) => r.models[m]).filter((c): c is EvalCell => c !== undefined);
    if (cells.length > 0) out[m] = cells.reduce((a, c) => a + c.accuracy, 0) / cells.length;
  }
  return out;
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
  const means = evalMeans(rows);
  body.push(["mean", ...models.map((m) => pct(means[m])), "", ""]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return `${[line(head), ...body.map(line)].join("\n")}\n(accuracy %, scored by this project's verifier; paper: the published number where one is given; diff: the last model trained minus the paper, in points)\n`;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

/** The table as HTML (the report). */
export function evalTableHtml(rows: readonly EvalRow[]): string {
  if (rows.length === 0) return "<p>no model evaluated in this run</p>";
  const models = modelsOf(rows);
  const means = evalMeans(rows);
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
    )}<tr><td>mean</td>${models.map((m) => `<td>${pct(means[m])}</td>`).join("")}<td></td><td></td></tr></table><p class="legend">Accuracy in %, every answer scored by this project's verifier (the judge deciding what it leaves undecided); hover a score for its format score and question count. Paper: the published number where one is given; difference: the last model trained minus the paper, in points.</p>`;
}
