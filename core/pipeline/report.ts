/**
 * report: report.json and a static report.html (inline SVG, no server, no scripts): the funnel per
 * stage, reject reasons, response lengths, pass rates, domains, time per stage, and the cost estimate.
 */
import { configHash } from "../config/index.ts";
import { estimateCost } from "../cost.ts";
import { keys } from "../layout/index.ts";
import { readJson, writeJson } from "../shards/byte-store.ts";
import { STAGE_UNITS, type StageSummary, stageSummaries, stageSummary } from "../stages/stage.ts";
import type { RunContext } from "./context.ts";
import { imageDataUri, keptExamples, type RejectExample, rejectExamples } from "./report-examples.ts";
import { describeRevision, type Revision, revisionKey, servedBy } from "./revision.ts";

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);
}

/** A horizontal bar chart as inline SVG. */
export function barChart(title: string, bars: [string, number][]): string {
  if (bars.length === 0) return `<h3>${esc(title)}</h3><p>none</p>`;
  const max = Math.max(1, ...bars.map(([, v]) => v));
  const row = 22;
  const h = bars.length * row + 10;
  const body = bars
    .map(([label, v], i) => {
      const w = Math.max(1, Math.round((v / max) * 360));
      const y = 5 + i * row;
      return `<text x="0" y="${y + 15}" font-size="12">${esc(label)}</text><rect x="220" y="${y + 3}" width="${w}" height="15" fill="#4a7ab5"/><text x="${226 + w}" y="${y + 15}" font-size="12">${v}</text>`;
    })
    .join("");
  return `<h3>${esc(title)}</h3><svg xmlns="http://www.w3.org/2000/svg" width="660" height="${h}" role="img" aria-label="${esc(title)}">${body}</svg>`;
}

const pre = (t: string | undefined) => (t ? `<pre>${esc(t)}</pre>` : "");

/** A few rejects per stage and reason, each with where it came from. */
function rejectsHtml(examples: RejectExample[]): string {
  if (examples.length === 0) return "";
  const groups = new Map<string, RejectExample[]>();
  for (const e of examples)
    groups.set(`${e.stage}: ${e.reason}`, [...(groups.get(`${e.stage}: ${e.reason}`) ?? []), e]);
  const body = [...groups]
    .map(
      ([title, list]) =>
        `<details><summary>${esc(title)} (${list.length} example${list.length === 1 ? "" : "s"})</summary>${list
          .map(
            (e) =>
              `<div class="ex"><div class="origin">${esc(e.origin)}</div>${e.detail ? `<p>${esc(e.detail)}</p>` : ""}${e.question ? `<p><b>question</b> ${esc(e.question)}</p>` : ""}${e.extracted !== undefined || e.gold !== undefined ? `<p><b>extracted</b> <code>${esc(e.extracted ?? "(nothing)")}</code> <b>gold</b> <code>${esc(e.gold ?? "")}</code></p>` : ""}${e.responseEnd ? `<p><b>end of the response</b></p>${pre(e.responseEnd)}` : ""}</div>`,
          )
          .join("")}</details>`,
    )
    .join("");
  return `<h2>Reject examples</h2><p>A few per reason; every reject: <code>npx recipe rejects &lt;run-id&gt; --stage S --reason R</code>.</p>${body}`;
}

/** A few kept SFT traces per domain, with their images (small ones embedded). */
async function keptHtml(ctx: RunContext): Promise<string> {
  const examples = await keptExamples(ctx.store, ctx.runId);
  if (examples.length === 0) return "";
  const items: string[] = [];
  for (const e of examples) {
    const images: string[] = [];
    for (const sha of e.images.slice(0, 4)) {
      const uri = await imageDataUri(ctx.store, sha);
      images.push(
        uri
          ? `<img src="${uri}" alt="image ${sha.slice(0, 12)}">`
          : `<code>image ${esc(sha.slice(0, 12))}…</code>`,
      );
    }
    items.push(
      `<div class="ex"><div class="origin">${esc(e.domain)} · ${esc(e.source)} · ${esc(e.origin)}</div>${images.join("")}<p><b>question</b> ${esc(e.question)}</p>${pre(e.response)}</div>`,
    );
  }
  return `<h2>Kept examples</h2><p>A few SFT traces per domain, as they go into the dataset.</p>${items.join("")}`;
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
  const report = {
    runId: ctx.runId,
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
    revision: await readJson<Revision>(ctx.store, revisionKey(ctx.runId)),
    stages,
    rejectReasons,
    sft: sft
      ? { rows: sft.out, perDomain: sft.perDomain, responseChars: sft.responseChars, files: sft.files }
      : null,
    rl: rl ? { rows: rl.out, passRateHistogram: rl.passRateHistogram, files: rl.files } : null,
    cost,
  };
  await writeJson(ctx.store, keys.report(ctx.runId, "report.json"), report);
  const funnel = stages
    .map(
      (s) =>
        `<tr><td>${esc(s.stage)}</td><td>${s.in}</td><td>${s.out}</td><td>${s.rejected}</td><td>${esc(STAGE_UNITS[s.stage] ?? "")}</td><td>${s.seconds.toFixed(1)}</td></tr>`,
    )
    .join("");
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>recipe-pipeline report: ${esc(ctx.runId)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:980px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}.warn{background:#fff3cd;padding:8px;border:1px solid #e0c36b}.ex{border:1px solid #ddd;margin:8px 0;padding:8px}.ex img{max-width:240px;max-height:240px;margin-right:8px}.origin{color:#666;font-size:12px}pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;font-size:12px}</style></head><body>
<h1>Run ${esc(ctx.runId)}</h1>
<p>Config hash <code>${report.configHash}</code>. Teacher: ${esc(report.teacher)}.</p>
<ul>${[...report.servedBy.distill, ...report.servedBy.verifyTraces, ...report.servedBy.filterRl].map((s) => `<li>${esc(s)}</li>`).join("")}<li>teacher answers: ${report.generation.asked} asked in this run, ${report.generation.fromCache} from the generation cache</li></ul>
${revisionHtml(report.revision)}
${ctx.replayTeacher ? (ctx.teacherKind === "synthetic" ? '<p class="warn"><b>Synthetic teacher:</b> responses were made from the gold answers by the bundled synthetic teacher (a seeded mix of right, wrong, unformatted, looping and truncated). This run tries the pipeline on your data; its data is not for training.</p>' : '<p class="warn"><b>Replay teacher:</b> responses came from the bundled replay server (recorded sample responses). This run exercises the pipeline; its data is not for training.</p>') : ""}
<h2>Funnel</h2><table><tr><th>stage</th><th>in</th><th>out</th><th>rejected</th><th>unit</th><th>seconds</th></tr>${funnel}</table>
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
${await keptHtml(ctx)}
${rejectsHtml(await rejectExamples(ctx.store, ctx.runId))}
${barChart(
  "RL pass rate (tenths)",
  ((rl?.passRateHistogram as number[]) ?? []).map((n, i) => [(i / 10).toFixed(1), n] as [string, number]),
)}
<h2>Cost (${esc(cost.label)})</h2><table><tr><th>stage</th><th>what</th><th>hours</th><th>USD</th></tr>${cost.lines
    .map(
      (l) =>
        `<tr><td>${esc(l.stage)}</td><td>${esc(l.what)}</td><td>${l.hours.toFixed(2)}</td><td>${l.usd.toFixed(2)}</td></tr>`,
    )
    .join("")}<tr><td>total</td><td></td><td></td><td>${cost.totalUsd.toFixed(2)}</td></tr></table>
<p>Assumptions: ${esc(JSON.stringify(cost.assumptions))}</p>
</body></html>
`;
  await ctx.store.write(keys.report(ctx.runId, "report.html"), html, { contentType: "text/html" });
  await writeJson(ctx.store, keys.success(ctx.runId, "report"), stageSummary("report"));
  return report;
}
