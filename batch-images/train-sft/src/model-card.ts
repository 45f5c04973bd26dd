/**
 * The exported SFT model's README.md (a Hugging Face model card): where its data is described, the
 * settings it was trained with, steps, the loss curve lmms-engine logged, wall time and GPU hours.
 * Pure: the launcher writes what this returns.
 */
import type { RunConfig } from "../../../core/config/schema.ts";
import type { LmmsDevice, StepMetrics } from "../../../core/train/lmms-engine.ts";

/** Progress kept in S3 across attempts: each attempt's wall time, every step's metrics. */
export interface TrainLog {
  attempts: { startedAt: string; seconds: number; fromStep: number }[];
  metrics: StepMetrics[];
}

/** At most `n` points of the curve, evenly spaced, the first and last always in. */
export function sampleCurve(metrics: readonly StepMetrics[], n: number): StepMetrics[] {
  if (metrics.length <= n) return [...metrics];
  const out: StepMetrics[] = [];
  for (let i = 0; i < n; i++) out.push(metrics[Math.round((i * (metrics.length - 1)) / (n - 1))]!);
  return out;
}

const BARS = "▁▂▃▄▅▆▇█";
/** A one-line sparkline of the loss (min to max of the points given). */
export function sparkline(values: readonly number[]): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return "";
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  return values
    .map((v) =>
      Number.isFinite(v) ? BARS[hi === lo ? 0 : Math.round(((v - lo) / (hi - lo)) * (BARS.length - 1))] : " ",
    )
    .join("");
}

/** " (3 attempts; resumed from step 2000)": attempts that found a checkpoint say which. */
function attemptsNote(log: TrainLog): string {
  if (log.attempts.length <= 1) return "";
  const resumed = log.attempts.filter((a) => a.fromStep > 0).map((a) => `step ${a.fromStep}`);
  return ` (${log.attempts.length} attempts${resumed.length > 0 ? `; resumed from ${resumed.join(", ")}` : ""})`;
}

export function modelCard(c: {
  runId: string;
  bucket: string;
  dataCard: string;
  sft: RunConfig["training"]["sft"];
  device: LmmsDevice;
  lmmsEngineVersion: string;
  steps: number;
  rows: number;
  nodes: number;
  procsPerNode: number;
  log: TrainLog;
}): string {
  const wall = c.log.attempts.reduce((a, t) => a + t.seconds, 0);
  const gpus = c.device === "cpu" ? 0 : c.nodes * c.procsPerNode;
  const curve = sampleCurve(c.log.metrics, 40);
  const dataUri =
    c.bucket.startsWith("file://") || c.bucket === "" ? c.dataCard : `s3://${c.bucket}/${c.dataCard}`;
  const s = c.sft;
  return [
    "---",
    "library_name: transformers",
    "pipeline_tag: image-text-to-text",
    `base_model: ${s.baseModel}`,
    "tags: [recipe-pipeline, openmmreasoner, sft]",
    "---",
    "",
    `# SFT cold start of ${s.baseModel} (run \`${c.runId}\`)`,
    "",
    `Supervised fine-tuning with lmms-engine ${c.lmmsEngineVersion} (\`fsdp2_trainer\`, \`vision_iterable\` data, sequence packing), the OpenMMReasoner recipe's stage 1b, on this run's SFT set (${c.rows} rows).`,
    c.device === "cpu"
      ? "\n**A CPU check run** (one process, gloo, SDPA; no flash-attention, liger kernels or remove-padding): this model shows the pipeline works, not the recipe's result.\n"
      : "",
    `- Data: the SFT set's data card, \`${dataUri}\``,
    `- Steps: ${c.steps}${attemptsNote(c.log)}`,
    `- Hardware: ${c.nodes} node(s) x ${c.procsPerNode} ${c.device === "cpu" ? "CPU process" : "GPU"}${c.procsPerNode > 1 ? "s" : ""}`,
    `- Wall time: ${(wall / 3600).toFixed(2)} h (${wall} s)`,
    `- GPU hours: ${((wall * gpus) / 3600).toFixed(1)}`,
    "",
    "## Settings (`training.sft`)",
    "",
    "| setting | value |",
    "| --- | --- |",
    ...Object.entries(s).map(([k, v]) => `| \`${k}\` | ${JSON.stringify(v)} |`),
    "",
    "## Loss",
    "",
    curve.length === 0
      ? "No step metrics were logged."
      : [
          `\`${sparkline(curve.map((m) => m.loss))}\` (${curve.length} of ${c.log.metrics.length} steps; first ${c.log.metrics[0]!.loss.toFixed(4)}, last ${c.log.metrics.at(-1)!.loss.toFixed(4)})`,
          "",
          "| step | loss | learning rate | grad norm |",
          "| ---: | ---: | ---: | ---: |",
          ...curve.map(
            (m) =>
              `| ${m.step} | ${m.loss.toFixed(4)} | ${m.lr?.toExponential(3) ?? ""} | ${m.gradNorm?.toFixed(3) ?? ""} |`,
          ),
        ].join("\n"),
    "",
  ].join("\n");
}
