import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { runConfigJsonSchema, runConfigReference } from "../../core/config/reference.ts";
import { DOCS_REFERENCE, DOCS_SCHEMA, main } from "../../local/cli/main.ts";

const run = promisify(execFile);

async function cli(args: string[]) {
  let out = "";
  let err = "";
  const code = await main(["node", "recipe", ...args], { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

async function tempFile(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "recipe-cli-"));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe("recipe validate", () => {
  it("prints OK and the resolved config for the sample, exit 0", async () => {
    const result = await cli(["validate", "examples/run.sample.json"]);

    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^examples\/run\.sample\.json: OK\n/);
    const resolved = JSON.parse(result.out.slice(result.out.indexOf("\n") + 1));
    expect(resolved.teacher.samplesPerQuestion).toBe(4);
    expect(resolved.training.rolloutsPerPrompt).toBe(16);
  });

  it("lists three independent mistakes with path, expected and found, exit 2", async () => {
    const file = await tempFile(
      "run.json",
      JSON.stringify({
        runId: "bad id",
        sources: {
          sft: [{ name: "a", uri: "s3://b/a/", format: "jsonl", domain: "charts", license: "MIT" }],
        },
        teacher: { temperature: -1 },
      }),
    );

    const result = await cli(["validate", file]);

    expect(result.code).toBe(2);
    expect(result.err).toContain("3 problem(s)");
    expect(result.err).toContain("$.runId");
    expect(result.err).toContain("$.sources.sft[0].domain");
    expect(result.err).toMatch(/\$\.teacher\.temperature: .*\n\s+expected: number >= 0\n\s+found:\s+-1/);
  });

  it("exits 2 when the file cannot be read", async () => {
    const result = await cli(["validate", "/nonexistent/run.json"]);

    expect(result.code).toBe(2);
    expect(result.err).toMatch(/cannot read/);
  });

  it("runs through the installed bin entry point with the same exit code", async () => {
    const file = await tempFile("run.json", "{}");

    const failure = await run("node", ["bin/recipe.mjs", "validate", file]).catch((e) => e);

    expect(failure.code).toBe(2);
    expect(failure.stderr).toContain("$.runId");
  });
});

describe("generated run.json reference", () => {
  it("is up to date with the schema (run `npm run docs` after changing it)", () => {
    expect(readFileSync(DOCS_REFERENCE, "utf8")).toBe(runConfigReference());
    expect(JSON.parse(readFileSync(DOCS_SCHEMA, "utf8"))).toEqual(runConfigJsonSchema());
  });

  it("documents every top-level section of the schema", () => {
    const reference = runConfigReference();

    for (const section of [
      "teacher",
      "verification",
      "filters",
      "dedup",
      "mixing",
      "rl",
      "training",
      "batch",
    ]) {
      expect(reference).toContain(`| \`${section}\` |`);
    }
  });
});

describe("recipe estimate", () => {
  it("prints a labelled estimate with its assumptions for the published recipe", async () => {
    const result = await cli([
      "estimate",
      "examples/openmmreasoner.run.json",
      "--sft-questions",
      "1000",
      "--rl-questions",
      "0",
    ]);

    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^ESTIMATE/);
    expect(result.out).toContain("distill");
    expect(result.out).toContain("assumptions:");
  });

  it("scales the distillation cost with the question count", async () => {
    const small = await cli(["estimate", "examples/run.sample.json", "--sft-questions", "1000", "--json"]);
    const large = await cli(["estimate", "examples/run.sample.json", "--sft-questions", "2000", "--json"]);

    const usd = (r: { out: string }) =>
      JSON.parse(r.out).lines.find((l: { stage: string }) => l.stage === "distill").usd;
    expect(usd(large)).toBeCloseTo(2 * usd(small), 6);
  });

  it("exits 2 on an invalid config", async () => {
    const file = await tempFile("run.json", "{}");

    expect((await cli(["estimate", file])).code).toBe(2);
  });
});
