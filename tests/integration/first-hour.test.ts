/**
 * A newcomer's first hour (issue 27), as the README's "Bring your own data" lays it out: their own
 * JSON-lines file next to run.json, `.recipe/` created in the same folder, `recipe run` again and
 * again.
 */
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { listAll } from "../../core/shards/byte-store.ts";

/** Some of the sample's text questions (the replay teacher has recordings for them). */
function sampleRows(n: number): string[] {
  return readFileSync("examples/sample/sft-text-math.jsonl", "utf8").trim().split("\n").slice(0, n);
}

/** A folder as the README lays it out: mymath.jsonl and run.json side by side. */
function ownFolder(runId: string, rows = sampleRows(6), extra: Record<string, unknown> = {}) {
  const work = mkdtempSync(join(tmpdir(), "recipe-own-"));
  writeFileSync(join(work, "mymath.jsonl"), `${rows.join("\n")}\n`);
  const config = {
    runId,
    sources: {
      sft: [{ name: "mine", uri: "mymath.jsonl", format: "jsonl", domain: "text_math", license: "CC0-1.0" }],
    },
    teacher: { model: "sample-teacher", samplesPerQuestion: 2 },
    verification: { judge: { enabled: false } },
    rl: { enabled: false },
    ...extra,
  };
  const file = join(work, "run.json");
  writeFileSync(file, JSON.stringify(config, null, 2));
  return { work, file, dataDir: join(work, ".recipe") };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

async function run(file: string, dataDir: string, extra: Record<string, unknown> = {}) {
  const { runCommand } = await import("../../cli/run.ts");
  let out = "";
  const code = await runCommand(
    file,
    { dataDir, parallelism: "2", ...extra },
    (t) => (out += t),
    (t) => (out += t),
  );
  return { code, out };
}

async function emulatorKeys(dataDir: string): Promise<string[]> {
  const { startS3Emulator } = await import("../../local/s3-emulator.ts");
  const { LOCAL_BUCKET } = await import("../../local/runtime.ts");
  const s3 = await startS3Emulator(LOCAL_BUCKET, join(dataDir, "s3"));
  try {
    return await listAll(s3.store, "");
  } finally {
    await s3.stop();
  }
}

describe("data next to run.json, .recipe/ in the same folder", () => {
  it("five reruns of an unchanged config keep the object count and the data folder flat", async () => {
    const { file, dataDir } = ownFolder("flat");
    const first = await run(file, dataDir);
    expect(first.code, first.out).toBe(0);
    const counts: { objects: number; files: number }[] = [];
    for (let i = 0; i < 5; i++) {
      const again = await run(file, dataDir);
      expect(again.code, again.out).toBe(0);
      expect(again.out).toContain("already succeeded with this run.json");
      counts.push({ objects: (await emulatorKeys(dataDir)).length, files: filesUnder(dataDir).length });
    }

    const keys = await emulatorKeys(dataDir);
    expect(keys.filter((k) => k.startsWith("sources/"))).toEqual(["sources/mymath.jsonl"]);
    expect(new Set(counts.map((c) => c.objects)).size, JSON.stringify(counts)).toBe(1);
    expect(new Set(counts.map((c) => c.files)).size, JSON.stringify(counts)).toBe(1);
  }, 400_000);

  it("uploads the images the rows name and nothing else of the folder", async () => {
    const { uploadSources } = await import("../../local/runtime.ts");
    const { startS3Emulator } = await import("../../local/s3-emulator.ts");
    const work = mkdtempSync(join(tmpdir(), "recipe-own-img-"));
    mkdirSync(join(work, "pics"));
    mkdirSync(join(work, ".recipe", "s3"), { recursive: true });
    writeFileSync(join(work, ".recipe", "s3", "old.jsonl"), "{}\n");
    writeFileSync(join(work, "pics", "a.png"), readFileSync("examples/sample/images/bar-0.png"));
    writeFileSync(join(work, "pics", "unused.png"), readFileSync("examples/sample/images/bar-1.png"));
    writeFileSync(join(work, "notes.txt"), "mine");
    writeFileSync(
      join(work, "q.jsonl"),
      `${JSON.stringify({ question: "<image>Which bar is tallest?", answer: "A", images: ["pics/a.png"] })}\n`,
    );
    writeFileSync(join(work, "run.json"), "{}");
    const s3 = await startS3Emulator("recipe-local");
    try {
      const first = await uploadSources(s3, join(work, "run.json"), ["."], [join(work, ".recipe")]);
      const second = await uploadSources(s3, join(work, "run.json"), ["."], [join(work, ".recipe")]);
      appendFileSync(join(work, "q.jsonl"), `${JSON.stringify({ question: "1+1?", answer: "2" })}\n`);
      const third = await uploadSources(s3, join(work, "run.json"), ["."], [join(work, ".recipe")]);

      expect(await listAll(s3.store, "")).toEqual(["sources/pics/a.png", "sources/q.jsonl"]);
      expect(first).toEqual({ uploaded: 2, unchanged: 0, removed: 0 });
      expect(second).toEqual({ uploaded: 0, unchanged: 2, removed: 0 });
      expect(third).toEqual({ uploaded: 1, unchanged: 1, removed: 0 });
    } finally {
      await s3.stop();
    }
  }, 60_000);
});

describe("a source file changed under the same name", () => {
  it("recomputes ingest and what follows, and says which file changed; unchanged, it is skipped", async () => {
    const { file, work, dataDir } = ownFolder("fixed", sampleRows(5));
    const first = await run(file, dataDir);
    appendFileSync(join(work, "mymath.jsonl"), `${sampleRows(6)[5]}\n`);
    const second = await run(file, dataDir);
    const third = await run(file, dataDir);

    expect(first.code, first.out).toBe(0);
    expect(first.out).toMatch(/ingest-sft\s+5\s+5/);
    expect(second.code, second.out).toBe(0);
    expect(second.out).toContain("a source file changed since the last run");
    expect(second.out).toMatch(
      /ingest-sft: recomputed \(s3:\/\/recipe-local\/sources\/mymath\.jsonl changed\)/,
    );
    expect(second.out).toMatch(/distill: recomputed \(plan-distill recomputed\)/);
    expect(second.out).toMatch(/ingest-sft\s+6\s+6/);
    expect(third.out).toContain("already succeeded with this run.json");
    expect(third.out).toMatch(/ingest-sft\s+6\s+6/);
  }, 300_000);
});

describe("a failed run that is fixed", () => {
  it("succeeds, and recipe status shows that attempt's outcome without the old failure", async () => {
    const rows = sampleRows(4);
    const renamed = rows.map((r) => {
      const { question, ...rest } = JSON.parse(r) as { question: string };
      return JSON.stringify({ ...rest, problem: question });
    });
    const { file, work, dataDir } = ownFolder("fixme", renamed);
    const { statusCommand } = await import("../../cli/run.ts");
    const failed = await run(file, dataDir);
    writeFileSync(join(work, "mymath.jsonl"), `${rows.join("\n")}\n`);
    const fixed = await run(file, dataDir);
    let status = "";
    const code = await statusCommand(
      "fixme",
      { dataDir },
      (t) => (status += t),
      (t) => (status += t),
    );

    expect(failed.code, failed.out).toBe(1);
    expect(fixed.code, fixed.out).toBe(0);
    expect(code, status).toBe(0);
    expect(status).toMatch(/^run fixme: SUCCEEDED/);
    expect(status).not.toContain("failure.json");
    expect(await emulatorKeys(dataDir)).toContain("runs/fixme/attempts/1/failure.json");
    expect(await emulatorKeys(dataDir)).not.toContain("runs/fixme/failure.json");
  }, 300_000);
});

describe("Ctrl-C in recipe run, at a terminal", () => {
  /** `recipe run` under a pseudo-terminal, Ctrl-C pressed once the output matches each of `waits`. */
  async function underTerminal(file: string, dataDir: string, waits: string[]) {
    const { execFile } = await import("node:child_process");
    const { promisify } = await import("node:util");
    const { resolve } = await import("node:path");
    const helper = resolve("tests/helpers/pty-run.py");
    const cli = resolve("bin/recipe.mjs");
    const { stdout } = await promisify(execFile)(
      "python3",
      [helper, ...waits, "--", process.execPath, cli, "run", file, "--data-dir", dataDir],
      { maxBuffer: 64 << 20, timeout: 600_000 },
    );
    return JSON.parse(stdout) as { code: number; pressed: number; output: string };
  }
  const HIDE = "\x1b[?25l";
  const SHOW = "\x1b[?25h";

  it("stops cleanly: the cursor comes back, one line says what is kept, and the same command resumes", async () => {
    const { file, dataDir } = ownFolder("ctrlc");
    const stopped = await underTerminal(file, dataDir, ["\\d+/\\d+ stages"]);
    const resumed = await run(file, dataDir);

    expect(stopped.pressed).toBe(1);
    expect(stopped.code, stopped.output).toBe(130);
    expect(stopped.output.lastIndexOf(SHOW)).toBeGreaterThan(stopped.output.lastIndexOf(HIDE));
    const lines = stopped.output.split(/\r?\n/).filter((l) => l.startsWith("interrupted:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`are kept in ${dataDir}`);
    expect(lines[0]).toContain("Run the same command to resume");
    expect(resumed.code, resumed.out).toBe(0);
    expect(resumed.out).toContain("starting run ctrlc again");
  }, 300_000);

  it("exits at once on a second Ctrl-C, the cursor restored", async () => {
    const { file, dataDir } = ownFolder("ctrlc2");
    const stopped = await underTerminal(file, dataDir, ["\\d+/\\d+ stages", "interrupted:"]);

    expect(stopped.pressed).toBe(2);
    expect(stopped.code, stopped.output).toBe(130);
    expect(stopped.output.lastIndexOf(SHOW)).toBeGreaterThan(stopped.output.lastIndexOf(HIDE));
  }, 300_000);
});

describe("a wrong column name", () => {
  it("is warned about before the run starts, and the run fails at ingest naming the reason and the column", async () => {
    const renamed = sampleRows(4).map((r) => {
      const { question, ...rest } = JSON.parse(r) as { question: string };
      return JSON.stringify({ ...rest, problem: question });
    });
    const { file, dataDir } = ownFolder("wrongcol", renamed);

    const r = await run(file, dataDir);

    expect(r.code, r.out).toBe(1);
    const warning = r.out.indexOf('has no column "question" (columns.question) but has "problem"');
    expect(warning).toBeGreaterThan(-1);
    expect(warning).toBeLessThan(r.out.indexOf("on the embedded runtime"));
    expect(r.out).toContain("FAILED (attempt 1) at FinishIngestSft: InputContractError");
    expect(r.out).toContain(
      'ingest-sft: source mine: all 4 row(s) were rejected at ingest (missing_question 4): no question in column "question"',
    );
    expect(r.out).not.toContain("SFT set is empty");
  }, 300_000);
});

describe("recipe validate", () => {
  it("refuses a source whose first rows name image files that do not exist", async () => {
    const { main } = await import("../../cli/main.ts");
    const rows = [
      JSON.stringify({
        question: "<image>Which fruit sold the most?",
        answer: "fig",
        images: ["pics/fruit.png"],
      }),
      JSON.stringify({ question: "2+2?", answer: "4" }),
    ];
    const { file } = ownFolder("noimage", rows);
    let err = "";

    const code = await main(["node", "recipe", "validate", file, "-q"], {
      out: () => undefined,
      err: (t) => (err += t),
    });

    expect(code).toBe(2);
    expect(err).toContain("$.sources.sft[0].columns.images");
    expect(err).toContain('row 1: "pics/fruit.png"');
  }, 60_000);
});

describe("your own questions without a GPU or an endpoint", () => {
  const own = Array.from({ length: 8 }, (_, i) =>
    JSON.stringify({
      question: `A box holds ${i + 3} rows of ${i + 11} pencils. How many pencils?`,
      answer: String((i + 3) * (i + 11)),
    }),
  );

  it("says before the run how many questions the replay teacher has no recording for", async () => {
    const { file, dataDir } = ownFolder("unrecorded", own);

    const r = await run(file, dataDir);

    const note = r.out.indexOf("the replay teacher has no recording for 8 of 8 question(s) in your sources");
    expect(note, r.out).toBeGreaterThan(-1);
    expect(note).toBeLessThan(r.out.indexOf("on the embedded runtime"));
    expect(r.out).toContain("--teacher synthetic");
  }, 300_000);

  it("--teacher synthetic runs the whole funnel on them, every filter acting, labelled not for training", async () => {
    const { file, dataDir } = ownFolder("synthetic", own, {
      teacher: { model: "my-teacher", samplesPerQuestion: 4 },
    });

    const r = await run(file, dataDir, { teacher: "synthetic" });

    expect(r.code, r.out).toBe(0);
    const verify = /verify-traces\s+(\d+)\s+(\d+)\s+(\d+)\s+traces\s+(.*)/.exec(r.out);
    expect(verify, r.out).not.toBeNull();
    expect(Number(verify![1])).toBe(32);
    expect(Number(verify![2])).toBeGreaterThan(0);
    expect(verify![4]).toContain("answer_mismatch");
    expect(verify![4]).toMatch(/bad_format|repetitive_response|truncated/);
    expect(r.out).toContain("synthetic teacher");
    const card = readFileSync(join(dataDir, "runs", "synthetic", "datasets", "sft", "README.md"), "utf8");
    const report = readFileSync(join(dataDir, "runs", "synthetic", "report", "report.html"), "utf8");
    expect(card).toContain("Synthetic teacher");
    expect(card).toContain("do not train on it");
    expect(report).toContain("Synthetic teacher");
    expect(report).toContain("not for training");
  }, 300_000);
});
