/** report: report.json and a static report.html for the run. */
import { z } from "zod";
import { keys } from "../../core/layout/index.ts";
import { writeReport } from "../../core/pipeline/report.ts";
import { handler, runContext } from "../shared/runtime.ts";

export const Event = z.object({ runId: z.string() });

export const handle = handler("report", Event, async ({ runId }) => {
  const r = await writeReport(await runContext(runId));
  return { report: keys.report(runId, "report.html"), estimatedUsd: r.cost.totalUsd };
});
