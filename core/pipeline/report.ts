/**
 * report: report.json and a static report.html (one file: inline SVG and images, no server, no
 * scripts): when the run ran, the funnel per branch, teacher accuracy per domain, counts per source,
 * reject reasons and examples (with their source line, images and gold answer), kept examples, response
 * lengths, pass rates by rollout count with the kept band marked, and the cost estimate.
 */
import { configHash } from "../config/index.ts";
import { estimateCost } from "../cost.ts";
import { keys } from "../layout/index.ts";
import { readJson, writeJson } from "../shards/byte-store.ts";
import { STAGE_UNITS, type StageSummary, stageSummaries, stageSummary } from "../stages/stage.ts";
import type { RunContext } from "./context.ts";
import { passRateBins, type QuestionInfo, questionIndex, reportData } from "./report-data.ts";
import { evalMeans, evalRows, evalTableHtml, readEvalResults } from "./report-eval.ts";
import { imageDataUri, keptExamples, type RejectExample, rejectExamples } from "./report-examples.ts";
import { describeRevision, type Revision, revisionKey, servedBy } from "./revision.ts";

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

/** A bar: label, value, and whether it is marked (drawn in the marked colour, e.g. the kept band). */
export type Bar = [label: string, value: number, marked?: boolean];

/** A horizontal bar chart as inline SVG (540 px wide: it fits any window the report is read in). */
export function barChart(title: string, bars: Bar[], legend?: string): string {
  if (bars.length === 0) return `<h3>${esc(title)}</h3><p>none</p>`;
  const max = Math.max(1, ...bars.map(([, v]) => v));
  const row = 22;
  const h = bars.length * row + 10;
  const body = bars
    .map(([label, v, marked], i) => {
      const w = Math.max(1, Math.round((v / max) * 260));
      const y = 5 + i * row;
      return `<text x="0" y="${y + 15}" font-size="12">${esc(label)}</text><rect x="220" y="${y + 3}" width="${w}" height="15" fill="${marked ? "#2e8b57" : "#4a7ab5"}"/><text x="${226 + w}" y="${y + 15}" font-size="12">${v}</text>`;
    })
    .join("");
  return `<h3>${esc(title)}</h3>${legend ? `<p class="legend">${legend}</p>` : ""}<svg xmlns="http://www.w3.org/2000/svg" width="540" height="${h}" viewBox="0 0 540 ${h}" role="img" aria-label="${esc(title)}">${body}</svg>`;
}

const pre = (t: string | undefined) => (t ? `<pre>${esc(t)}</pre>` : "");

/** The images of a question, embedded (small ones) or named by hash. */
async function imagesHtml(ctx: RunContext, shas: readonly string[]): Promise<string> {
  const out: string[] = [];
  for (const sha of shas.slice(0, 4)) {
    const uri = await imageDataUri(ctx.store, sha);
    out.push(
      uri
        ? `<img src="${uri}" alt="image ${sha.slice(0, 12)}">`
        : `<code>image ${esc(sha.slice(0, 12))}… (too large to embed)</code>`,
    );
  }
  return out.join("");
}

/** A few rejects per stage and reason, each with its source line, its images and its gold answer. */
async function rejectsHtml(
  ctx: RunContext,
  examples: RejectExample[],
  index: Map<string, QuestionInfo>,
): Promise<string> {
  if (examples.length === 0) return "";
  const groups = new Map<string, RejectExample[]>();
  for (const e of examples)
    groups.set(`${e.stage}: ${e.reason}`, [...(groups.get(`${e.stage}: ${e.reason}`) ?? []), e]);
  const parts: string[] = [];
  for (const [title, list] of groups) {
    const items: string[] = [];
    for (const e of list) {
      const q = e.questionId ? index.get(e.questionId) : undefined;
      const origin = q ? `${q.source} · ${q.origin}` : e.origin;
      items.push(
        `<div class="ex"><div class="origin">${esc(origin)}</div>${q ? await imagesHtml(ctx, q.images) : ""}${e.detail ? `<p>${esc(e.detail)}</p>` : ""}${(e.question ?? q?.question) ? `<p><b>question</b> ${esc(e.question ?? q?.question ?? "")}</p>` : ""}${e.extracted !== undefined || e.gold !== undefined || q ? `<p><b>extracted</b> <code>${esc(e.extracted ?? "(nothing)")}</code> <b>gold</b> <code>${esc(e.gold ?? q?.answer ?? "")}</code></p>` : ""}${e.responseEnd ? `<p><b>end of the response</b></p>${pre(e.responseEnd)}` : ""}</div>`,
      );
    }
    parts.push(
      `<details><summary>${esc(title)} (${list.length} example${list.length === 1 ? "" : "s"})</summary>${items.join("")}</details>`,
    );
  }
  return `<h2 id="rejects">Reject examples</h2><p>A few per reason, with the question's source file and line; every reject: <code>npx recipe rejects &lt;run-id&gt; --stage S --reason R</code>.</p>${parts.join("")}`;
}

/** A few kept SFT traces per domain (one per question), with their images, gold answer and verdict. */
async function keptHtml(ctx: RunContext, index: Map<string, QuestionInfo>): Promise<string> {
  const examples = await keptExamples(ctx.store, ctx.runId);
  if (examples.length === 0) return "";
  const items: string[] = [];
  for (const e of examples) {
    const q = index.get(e.questionId);
    items.push(
      `<div class="ex"><div class="origin">${esc(e.domain)} · ${esc(q?.source ?? e.source)} · ${esc(q?.origin ?? e.origin)}</div>${await imagesHtml(ctx, e.images)}<p><b>question</b> ${esc(e.question)}</p><p><b>gold</b> <code>${esc(q?.answer ?? "?")}</code> <b>extracted</b> <code>${esc(e.extracted ?? "")}</code> <b>verdict</b> <code>${esc(e.verdict ?? "")}</code></p>${pre(e.response)}</div>`,
    );
  }
  return `<h2 id="kept">Kept examples</h2><p>A few SFT traces per domain, one per question, as they go into the dataset.</p>${items.join("")}`;
}

const SFT_STAGES = [
  "ingest-sft",
  "dedup-sft",
  "plan-distill",
  "distill",
  "verify-traces",
  "select-and-mix",
  "write-sft-dataset",
];
const RL_STAGES = [
  "ingest-rl",
  "dedup-rl",
  "plan-rollouts",
  "estimate-difficulty",
  "filter-rl",
  "write-rl-dataset",
];

/** What a stage's in and out mean where a reader could misread them. */
const STAGE_NOTES: Record<string, string> = {
  distill: "each question asked teacher.samplesPerQuestion times",
  "estimate-difficulty": "each question rolled out rl.rolloutsPerQuestion times",
  "filter-rl": "rollouts in, one pass rate per question out; the band is applied by write-rl-dataset",
  "write-rl-dataset": "questions outside the pass-rate band are its rejects",
};

function funnelTable(stages: StageSummary[]): string {
  if (stages.length === 0) return "<p>none</p>";
  return `<table><tr><th>stage</th><th>in</th><th>out</th><th>rejected</th><th>unit</th><th>seconds</th><th>note</th></tr>${stages
    .map(
      (s) =>
        `<tr><td>${esc(s.stage)}</td><td>${s.in}</td><td>${s.out}</td><td>${s.rejected}</td><td>${esc(STAGE_UNITS[s.stage] ?? "")}</td><td>${s.seconds.toFixed(1)}</td><td class="note">${esc(STAGE_NOTES[s.stage] ?? "")}</td></tr>`,
    )
    .join("")}</table>`;
}

/** A number as a person reads it: at most 2 decimals, thousands grouped. */
function figure(v: number | string): string {
  return typeof v === "number" ? v.toLocaleString("en-US", { maximumFractionDigits: 2 }) : v;
}

function seconds(s: number): string {
  return s >= 90 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(1)} s`;
}

/** Which stages this execution kept and which it computed again, and why. */
function revisionHtml(revision: Revision | null): string {
  if (!revision) return "";
  const lines = describeRevision(revision);
  if (lines.length === 0) return `<p>Revision: attempt ${revision.attempt}, every stage computed fresh.</p>`;
  return `<details><summary>Revision: attempt ${revision.attempt}</summary><ul>${lines.map((l) => `<li>${esc(l)}</li>`).join("")}</ul></details>`;
}

export async function writeReport(ctx: RunContext) {
  const stages = await stageSummaries(ctx.store, ctx.runId);
  const find = (name: string) =>
    stages.find((s) => s.stage === name) as (StageSummary & Record<string, unknown>) | undefined;
  const sft = find("write-sft-dataset");
  const rl = find("write-rl-dataset");
  const rejectReasons: Record<string, number> = {};
  for (const s of stages)
    for (const [r, n] of Object.entries(s.reasons)) rejectReasons[`${s.stage}: ${r}`] = n;
  const sftQuestions = find("dedup-sft")?.out ?? 0;
  const rlQuestions = find("dedup-rl")?.out ?? 0;
  const distill = find("distill");
  const completion = distill?.extra.completion_tokens ?? 0;
  const responses = distill?.extra.responses ?? 0;
  const cost = estimateCost(ctx.config, {
    sftQuestions,
    rlQuestions,
    avgTeacherTokens: responses > 0 ? completion / responses : 2000,
    avgRolloutTokens: 1500,
  });
  const revision = await readJson<Revision>(ctx.store, revisionKey(ctx.runId));
  const index = await questionIndex(ctx.store, ctx.runId);
  const data = await reportData(ctx.store, ctx.runId, index);
  // The benchmark table (evaluate's results), in the order of the run's own task list.
  const evalResults = await readEvalResults(ctx.store, ctx.runId);
  const benchmarks = evalRows(evalResults, undefined, ctx.config.evaluation.tasks);
  const finishedAt = new Date();
  const started = revision?.startedAt ? Date.parse(revision.startedAt) : Number.NaN;
  const report = {
    runId: ctx.runId,
    time: {
      startedAt: revision?.startedAt ?? null,
      finishedAt: finishedAt.toISOString(),
      wallSeconds: Number.isFinite(started) ? (finishedAt.getTime() - started) / 1000 : null,
      stageSeconds: stages.reduce((a, s) => a + s.seconds, 0),
    },
    ...data,
    configHash: configHash(ctx.config),
    teacher: ctx.replayTeacher
      ? ctx.teacherKind === "synthetic"
        ? `synthetic (answers made from the gold answers, not a model; not for training): ${ctx.config.teacher.model}`
        : `replay (recorded sample responses, not a live model): ${ctx.config.teacher.model}`
      : ctx.config.teacher.model,
    // The models and endpoints that really answered (recorded by the stages that asked them).
    servedBy: {
      distill: await servedBy(ctx.store, ctx.runId, "distill"),
      verifyTraces: await servedBy(ctx.store, ctx.runId, "verify-traces"),
      filterRl: await servedBy(ctx.store, ctx.runId, "filter-rl"),
    },
    generation: { asked: distill?.extra.responses ?? 0, fromCache: distill?.extra.cache_hits ?? 0 },
    revision,
    stages,
    rejectReasons,
    sft: sft
      ? { rows: sft.out, perDomain: sft.perDomain, responseChars: sft.responseChars, files: sft.files }
      : null,
    rl: rl
      ? {
          rows: rl.out,
          passRateHistogram: rl.passRateHistogram,
          passRateCounts: rl.passRateCounts,
          files: rl.files,
        }
      : null,
    evaluation:
      benchmarks.length > 0
        ? {
            benchmarks,
            means: evalMeans(benchmarks),
            models: [...new Set(evalResults.map((r) => r.modelUri))],
          }
        : null,
    cost,
  };
  await writeJson(ctx.store, keys.report(ctx.runId, "report.json"), report);
  const sftStages = stages.filter((s) => SFT_STAGES.includes(s.stage));
  const rlStages = stages.filter((s) => RL_STAGES.includes(s.stage));
  const otherStages = stages.filter((s) => !SFT_STAGES.includes(s.stage) && !RL_STAGES.includes(s.stage));
  const band = ctx.config.rl.passRateBand;
  const bins = passRateBins(
    (rl?.passRateCounts as Record<string, number>) ?? {},
    ctx.config.rl.rolloutsPerQuestion,
    band,
  );
  const distilled = find("dedup-sft")?.out ?? 0;
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>recipe-pipeline report: ${esc(ctx.runId)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1rem auto;padding:0 1rem;max-width:980px;overflow-wrap:anywhere}table{border-collapse:collapse;max-width:100%}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th,td:first-child,td.note{text-align:left}td.note{color:#555;font-size:12px}.warn{background:#fff3cd;padding:8px;border:1px solid #e0c36b}.ex{border:1px solid #ddd;margin:8px 0;padding:8px}.ex img{max-width:240px;max-height:240px;margin-right:8px}.origin{color:#666;font-size:12px}.legend{font-size:12px;color:#444}pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;font-size:12px}svg{max-width:100%;height:auto}</style></head><body>
<h1>Run ${esc(ctx.runId)}</h1>
<p>Attempt ${report.revision?.attempt ?? 1}, started ${esc(report.time.startedAt ?? "(unknown)")}, report written ${esc(report.time.finishedAt)}${report.time.wallSeconds !== null ? `: ${seconds(report.time.wallSeconds)} in all` : ""}; ${seconds(report.time.stageSeconds)} of stage work. Config hash <code>${report.configHash}</code>. Teacher: ${esc(report.teacher)}.</p>
<ul>${[...report.servedBy.distill, ...report.servedBy.verifyTraces, ...report.servedBy.filterRl].map((s) => `<li>${esc(s)}</li>`).join("")}<li>teacher answers: ${report.generation.asked} asked in this run, ${report.generation.fromCache} from the generation cache</li></ul>
${revisionHtml(report.revision)}
${ctx.replayTeacher ? (ctx.teacherKind === "synthetic" ? '<p class="warn"><b>Synthetic teacher:</b> responses were made from the gold answers by the bundled synthetic teacher (a seeded mix of right, wrong, unformatted, looping and truncated). This run tries the pipeline on your data; its data is not for training.</p>' : '<p class="warn"><b>Replay teacher:</b> responses came from the bundled replay server (recorded sample responses). This run exercises the pipeline; its data is not for training.</p>') : ""}
<h2 id="summary">Summary</h2>
<ul><li>SFT rows: ${sft?.out ?? 0}${rl ? `; RL rows: ${rl.out}` : ""}</li><li>questions with at least one verified trace: ${data.questionsWithVerifiedTrace} of ${distilled} distilled</li></ul>
<h3 id="accuracy">Teacher accuracy per domain</h3>${
    data.accuracy.length === 0
      ? "<p>no responses verified</p>"
      : `<table><tr><th>domain</th><th>responses</th><th>answer matched gold</th><th>accuracy</th><th>kept by verify-traces</th></tr>${data.accuracy
          .map(
            (d) =>
              `<tr><td>${esc(d.domain)}</td><td>${d.responses}</td><td>${d.correct}</td><td>${d.responses > 0 ? `${((100 * d.correct) / d.responses).toFixed(1)}%` : ""}</td><td>${d.kept}</td></tr>`,
          )
          .join("")}</table>`
  }
<h3 id="sources">Per source</h3><table><tr><th>source</th><th>records read</th><th>questions ingested</th><th>SFT rows</th></tr>${data.sources
    .map(
      (s) =>
        `<tr><td>${esc(s.source)}</td><td>${s.read}</td><td>${s.ingested}</td><td>${s.sftRows}</td></tr>`,
    )
    .join("")}</table>
<h2 id="funnel">Funnel</h2>
<h3>SFT</h3>${funnelTable(sftStages)}
${rlStages.length > 0 ? `<h3>RL</h3>${funnelTable(rlStages)}` : ""}
${otherStages.length > 0 ? `<h3>Other</h3>${funnelTable(otherStages)}` : ""}
${barChart(
  "Reject reasons",
  Object.entries(rejectReasons).sort((a, b) => b[1] - a[1]),
)}
${barChart("SFT rows per domain", Object.entries((sft?.perDomain as Record<string, number>) ?? {}))}
${barChart("SFT response length, characters (histogram)", (sft?.responseCharsHistogram as [string, number][]) ?? [])}
<p>Percentiles: ${esc(
    Object.entries((sft?.responseChars as Record<string, number>) ?? {})
      .map(([k, v]) => `${k} ${v}`)
      .join(", ") || "no rows",
  )}</p>
${await keptHtml(ctx, index)}
${await rejectsHtml(ctx, await rejectExamples(ctx.store, ctx.runId), index)}
${
  rl
    ? `<h2 id="pass-rates">RL pass rates</h2>${barChart(
        `Questions per pass rate (${ctx.config.rl.rolloutsPerQuestion} rollouts each, or the source's own)`,
        bins.map((b) => [b.label, b.n, b.kept] as Bar),
        band.enabled
          ? `green: kept (${band.min} &lt; pass rate &lt; ${band.max}); blue: dropped as always or never solved`
          : "the pass-rate band is off: every question is kept",
      )}`
    : ""
}
${benchmarks.length > 0 ? `<h2 id="benchmarks">Benchmarks</h2>${evalTableHtml(benchmarks)}` : ""}
<h2 id="cost">Cost (${esc(cost.label)})</h2><table><tr><th>stage</th><th>what</th><th>hours</th><th>USD</th></tr>${cost.lines
    .map(
      (l) =>
        `<tr><td>${esc(l.stage)}</td><td>${esc(l.what)}</td><td>${l.hours.toFixed(2)}</td><td>${l.usd.toFixed(2)}</td></tr>`,
    )
    .join("")}<tr><td>total</td><td></td><td></td><td>${cost.totalUsd.toFixed(2)}</td></tr></table>
<h3>Assumptions</h3><ul>${Object.entries(cost.assumptions)
    .map(([k, v]) => `<li>${esc(k)}: ${esc(figure(v))}</li>`)
    .join("")}</ul>
</body></html>
`;
  await ctx.store.write(keys.report(ctx.runId, "report.html"), html, { contentType: "text/html" });
  await writeJson(ctx.store, keys.success(ctx.runId, "report"), stageSummary("report"));
  return report;
}
