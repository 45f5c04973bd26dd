/**
 * report.html as a researcher reads it (issue 27, item 7): what it says about the sample run, and how
 * it renders in a real browser (headless Chromium, Debian's package): no console errors, every
 * image loads, nothing wider than 1,280 px, the sections a reader looks for. One static file.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../core/layout/index.ts";
import { chromiumPath, renderInChromium } from "../helpers/chromium.ts";
import { local, runSample } from "../helpers/local-run.ts";

let html = "";
let file = "";

const CHROMIUM = chromiumPath();
if (!CHROMIUM)
  console.warn(
    "SKIPPED: report.html in headless Chromium, because no chromium is installed here (apt-get install chromium; .ci/run installs it)",
  );

beforeAll(async () => {
  const { execution } = await runSample();
  expect(execution.status).toBe("SUCCEEDED");
  html = (await local.rt!.s3.store.readBytes(keys.report("sample", "report.html")))!.toString("utf8");
  file = join(mkdtempSync(join(tmpdir(), "recipe-report-")), "report.html");
  writeFileSync(file, html);
}, 300_000);

afterAll(async () => {
  await local.rt?.stop();
  local.rt = null;
});

/** The HTML of one section, from its heading to the next h2. */
const section = (id: string) => {
  const at = html.indexOf(`<h2 id="${id}">`);
  if (at < 0) return "";
  const next = html.indexOf("<h2", at + 4);
  return html.slice(at, next < 0 ? undefined : next);
};

describe("report.html", () => {
  it("shows kept examples by their source file and line, with gold answer and verdict, one per question", () => {
    const kept = section("kept");
    const origins = [...kept.matchAll(/<div class="origin">([^<]*)<\/div>/g)].map((m) => m[1]!);
    const questions = [...kept.matchAll(/<p><b>question<\/b> ([^<]*)<\/p>/g)].map((m) => m[1]!);

    expect(origins.length).toBeGreaterThan(0);
    for (const o of origins) expect(o).toMatch(/sources\/sample\/[\w-]+\.jsonl:\d+$/);
    expect(kept).not.toContain("runs/sample/select-and-mix");
    expect(kept).toContain("<b>gold</b>");
    expect(kept).toContain("<b>verdict</b> <code>match_");
    expect(new Set(questions).size).toBe(questions.length);
  });

  it("shows a reject's question with its images and source line", () => {
    const rejects = section("rejects");
    const fig = rejects.indexOf("Which fruit sold the most per day?");

    expect(fig).toBeGreaterThan(-1);
    expect(rejects).toMatch(
      /<div class="origin">sample-vqa · sources\/sample\/sft-vqa\.jsonl:\d+<\/div><img src="data:image\/png;base64,/,
    );
  });

  it("bins RL pass rates by rollouts (k/4) and marks the kept band", () => {
    const rates = section("pass-rates");

    expect(rates).toContain("1/4 (0.25)");
    expect(rates).toContain("3/4 (0.75)");
    expect(rates).not.toMatch(/>0\.3</);
    expect(rates).toContain('fill="#2e8b57"');
    expect(rates).toContain("green: kept");
  });

  it("splits the funnel by branch, says what filter-rl counts, and prints the cost assumptions as figures", () => {
    const funnel = section("funnel");
    const cost = section("cost");

    expect(funnel).toContain("<h3>SFT</h3>");
    expect(funnel).toContain("<h3>RL</h3>");
    expect(funnel).toContain("the band is applied by write-rl-dataset");
    expect(cost).not.toMatch(/\d+\.\d{3,}/);
    expect(cost).not.toContain("{&quot;");
  });

  it("says when it ran and how long, questions with a verified trace, teacher accuracy per domain and counts per source", () => {
    const summary = section("summary");

    expect(html).toMatch(/started \d{4}-\d\d-\d\dT[\d:.]+Z, report written \d{4}-/);
    expect(html).toMatch(/ in all; /);
    expect(summary).toMatch(/questions with at least one verified trace: \d+ of \d+ distilled/);
    expect(summary).toMatch(/<td>general_vqa<\/td><td>\d+<\/td><td>\d+<\/td><td>[\d.]+%<\/td>/);
    expect(summary).toMatch(/<td>sample-vqa<\/td><td>\d+<\/td><td>\d+<\/td><td>\d+<\/td>/);
  });

  it("is one static file: no scripts, no external resources", () => {
    expect(html).not.toMatch(/<script|<link |src="http|href="http/i);
  });

  it.skipIf(!CHROMIUM)(
    "renders in headless Chromium with no console errors, every image loaded, nothing wider than 1,280 px",
    async () => {
      const page = await renderInChromium(file, 1280);

      expect(page.errors).toEqual([]);
      expect(page.images.length).toBeGreaterThan(0);
      expect(page.images.filter((i) => !i.ok)).toEqual([]);
      expect(page.widest.right, page.widest.tag).toBeLessThanOrEqual(1280);
      expect(page.scrollWidth).toBeLessThanOrEqual(1280);
      for (const h of ["Summary", "Funnel", "Kept examples", "Reject examples", "RL pass rates"])
        expect(page.headings).toContain(h);
      expect(page.headings.some((h) => h.startsWith("Cost"))).toBe(true);
    },
    120_000,
  );

  it.skipIf(!CHROMIUM)(
    "the browser check sees a broken page: a console error, an image that does not load, a wide table",
    async () => {
      const bad = join(mkdtempSync(join(tmpdir(), "recipe-bad-")), "bad.html");
      writeFileSync(
        bad,
        '<!doctype html><html><body><h2>x</h2><img src="data:image/png;base64,AAAA"><table style="width:2000px"><tr><td>wide</td></tr></table><script>console.error("boom")</script></body></html>',
      );

      const page = await renderInChromium(bad, 1280);

      expect(page.errors.some((e) => e.includes("boom"))).toBe(true);
      expect(page.images).toEqual([{ src: expect.any(String), ok: false }]);
      expect(page.widest.right).toBeGreaterThan(1280);
    },
    120_000,
  );
});
