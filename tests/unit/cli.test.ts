import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOCS_REFERENCE, DOCS_SCHEMA, main } from "../../cli/main.ts";
import { runConfigJsonSchema, runConfigReference } from "../../core/config/reference.ts";

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
  it("with --instance-type, refuses the default teacher on 8 x 48 GB and names the instance that fits", async () => {
    const small = await cli([
      "validate",
      "examples/openmmreasoner.run.json",
      "--quiet",
      "--instance-type",
      "g6e.48xlarge",
    ]);
    const big = await cli([
      "validate",
      "examples/openmmreasoner.run.json",
      "--quiet",
      "--instance-type",
      "p5.48xlarge",
    ]);
    const unknown = await cli([
      "validate",
      "examples/openmmreasoner.run.json",
      "--quiet",
      "--instance-type",
      "x9.huge",
    ]);
    const estimate = await cli([
      "estimate",
      "examples/openmmreasoner.run.json",
      "--instance-type",
      "g6e.48xlarge",
    ]);

    expect(small.code).toBe(2);
    expect(small.err).toContain(
      "$.teacher.model: Qwen/Qwen3-VL-235B-A22B-Instruct (about 471 GB of BF16 weights) does not fit on g6e.48xlarge",
    );
    expect(small.err).toContain("use p5.48xlarge");
    expect(big.code).toBe(0);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain("--instance-type");
    expect(estimate.code).toBe(2);
    expect(estimate.err).toContain("does not fit on g6e.48xlarge");
  });

  it("warns about columns that look like the question, answer or images and are not mapped (JSONL and Parquet)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "recipe-cols-"));
    writeFileSync(
      join(dir, "q.jsonl"),
      `${JSON.stringify({ problem: "2+2?", solution: "4", image: "a.png" })}\n`,
    );
    // validate also checks that the first rows' image files exist.
    writeFileSync(join(dir, "a.png"), readFileSync("examples/sample/images/bar-0.png"));
    const parquet = parquetWriteBuffer({
      columnData: [
        { name: "question", data: ["What is shown?"], type: "STRING" },
        { name: "answer", data: ["B"], type: "STRING" },
        { name: "image", data: ["x.png"], type: "STRING" },
      ],
    });
    writeFileSync(join(dir, "q.parquet"), new Uint8Array(parquet));
    const source = (name: string, uri: string, format: string, extra = {}) => ({
      name,
      uri,
      format,
      domain: "text_math",
      license: "MIT",
      ...extra,
    });
    writeFileSync(
      join(dir, "run.json"),
      JSON.stringify({
        runId: "cols",
        sources: {
          sft: [
            source("mine", "q.jsonl", "jsonl"),
            source("mapped", "q.jsonl", "jsonl", {
              columns: { question: "problem", answer: "solution", images: "image" },
            }),
          ],
          rl: [source("pq", "q.parquet", "parquet")],
        },
      }),
    );

    const result = await cli(["validate", join(dir, "run.json"), "--quiet"]);

    expect(result.code).toBe(0);
    const warnings = result.err.split("\n").filter((l) => l.startsWith("warning: "));
    expect(warnings.map((w) => /^warning: (\S+) .*no column "(\w+)"/.exec(w)!.slice(1))).toEqual([
      ["$.sources.sft[0]", "question"],
      ["$.sources.sft[0]", "answer"],
      ["$.sources.sft[0]", "images"],
      ["$.sources.rl[0]", "images"],
    ]);
    expect(warnings[2]).toContain('but has "image"');
  });

  it("prints OK and the resolved config for the sample, exit 0", async () => {
    const result = await cli(["validate", "examples/run.sample.json"]);

    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^examples\/run\.sample\.json: OK\n/);
    const resolved = JSON.parse(result.out.slice(result.out.indexOf("\n") + 1));
    expect(resolved.teacher.samplesPerQuestion).toBe(4);
    expect(resolved.training.rl.rolloutsPerPrompt).toBe(16);
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

  it("prices the published recipe's SFT training, RL training and evaluation jobs", async () => {
    const result = await cli([
      "estimate",
      "examples/openmmreasoner.run.json",
      "--sft-questions",
      "1000",
      "--rl-questions",
      "0",
    ]);

    expect(result.code).toBe(0);
    const line = (stage: string) => result.out.split("\n").find((l) => l.startsWith(`${stage} `));
    // 4,300 steps of one 61,440-token pack per GPU at 4,000 tokens/s: 18.3 h on 4 nodes of 8, before RL.
    expect(result.out.indexOf("train-sft")).toBeLessThan(result.out.indexOf("train-rl"));
    expect(result.out.indexOf("train-rl")).toBeLessThan(result.out.indexOf("evaluate"));
    expect(line("train-sft")).toMatch(
      /^train-sft\s+18\.3\s+\$4039\.20 {2}4300 SFT steps on 4 x 8 GPUs \(587 GPU hours, 61440-token packs\)$/,
    );
    expect(line("train-rl")).toContain("1500 GSPO steps on 8 x 8 GPU nodes");
    expect(line("evaluate")).toContain("3 model(s) (base, sft, rl) x 6 benchmark(s) x 1000 questions");
    expect(result.out).toContain("SFT tokens per GPU per second: 4,000");
  });

  it("scales the distillation cost with the question count", async () => {
    const small = await cli(["estimate", "examples/run.sample.json", "--sft-questions", "1000", "--json"]);
    const large = await cli(["estimate", "examples/run.sample.json", "--sft-questions", "2000", "--json"]);

    const usd = (r: { out: string }) =>
      JSON.parse(r.out).lines.find((l: { stage: string }) => l.stage === "distill").usd;
    expect(usd(large)).toBeCloseTo(2 * usd(small), 6);
  });

  it("counts the questions in the config's own source files and says so", async () => {
    const result = await cli(["estimate", "examples/run.sample.json", "--json"]);

    const assumptions = JSON.parse(result.out).assumptions;
    const lines = (f: string) =>
      readFileSync(f, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "").length;
    const sft = lines("examples/sample/sft-vqa.jsonl") + lines("examples/sample/sft-text-math.jsonl");
    expect(assumptions["SFT questions sent to the teacher"]).toBe(
      `${sft} (counted in the sources' files, before dedup)`,
    );
    expect(assumptions["RL questions given rollouts"]).toMatch(/^\d+ \(counted in the sources' files/);
  });

  it("falls back to the recipe's figures, naming the sources it cannot read", async () => {
    const result = await cli(["estimate", "examples/openmmreasoner.run.json", "--json"]);

    const assumptions = JSON.parse(result.out).assumptions;
    expect(assumptions["SFT questions sent to the teacher"]).toMatch(
      /^103,000 \(the published recipe's figure: s3:\/\//,
    );
  });

  it("prices the instance and capacity it is told, p5.48xlarge on demand by default, and says so", async () => {
    const base = ["estimate", "examples/run.sample.json", "--sft-questions", "1000", "--json"];
    const byDefault = JSON.parse((await cli(base)).out);
    const g6e = JSON.parse((await cli([...base, "--instance-type", "g6e.48xlarge"])).out);
    const spot = JSON.parse((await cli([...base, "--capacity", "spot"])).out);

    expect(byDefault.instanceType).toBe("p5.48xlarge");
    expect(byDefault.assumptions["instance type"]).toBe("p5.48xlarge");
    expect(byDefault.assumptions.capacity).toMatch(/^spot-then-on-demand \(priced on demand/);
    expect(g6e.instanceType).toBe("g6e.48xlarge");
    expect(spot.assumptions["USD per instance hour"]).toBeLessThan(
      byDefault.assumptions["USD per instance hour"],
    );
    expect((await cli([...base, "--instance-type", "x9.huge"])).code).toBe(2);
    expect((await cli([...base, "--capacity", "cheap"])).code).toBe(2);
  });

  it("exits 2 on an invalid config", async () => {
    const file = await tempFile("run.json", "{}");

    expect((await cli(["estimate", file])).code).toBe(2);
  });
});

describe("bad input to every command", () => {
  const STACK_FRAME = /^\s+at .+\(?.+:\d+:\d+\)?$/m;
  // No AWS account here: the AWS paths must fail on the missing region or credentials, in one line.
  const AWS_VARS = [
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_PROFILE",
  ];
  const noAws = Object.fromEntries(
    Object.entries({
      ...process.env,
      AWS_CONFIG_FILE: "/nonexistent",
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent",
      AWS_EC2_METADATA_DISABLED: "true",
    }).filter(([k]) => !AWS_VARS.includes(k)),
  );
  let saved: NodeJS.ProcessEnv;
  beforeAll(() => {
    saved = { ...process.env };
    for (const k of AWS_VARS) delete process.env[k];
    Object.assign(process.env, {
      AWS_CONFIG_FILE: "/nonexistent",
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent",
      AWS_EC2_METADATA_DISABLED: "true",
    });
  });
  afterAll(() => {
    process.env = saved;
  });

  it.each([
    ["run a missing file", ["run", "nofile.json"], 2, /cannot read nofile\.json: no such file/],
    ["status of a malformed run id", ["status", "bad/id"], 2, /not a run id: "bad\/id"/],
    ["status in AWS without a region", ["status", "t1", "--bucket", "x"], 2, /no AWS region/],
    [
      "status with an ARN but no bucket",
      ["status", "t1", "--state-machine-arn", "arn:aws:states:us-east-1:1:stateMachine:x"],
      2,
      /needs --bucket/,
    ],
    [
      "estimate with a non-number",
      ["estimate", "examples/run.sample.json", "--sft-questions", "abc"],
      2,
      /option '--sft-questions <n>' argument 'abc' is invalid\. expected a whole number/,
    ],
    [
      "estimate with a negative number",
      ["estimate", "examples/run.sample.json", "--teacher-tokens", "-5"],
      2,
      /option '--teacher-tokens <n>' argument '-5' is invalid\. expected a whole number from 1/,
    ],
    ["estimate a missing file", ["estimate", "nofile.json"], 2, /cannot read nofile\.json/],
    ["validate a missing file", ["validate", "nofile.json"], 2, /cannot read nofile\.json/],
    ["submit a missing file", ["submit", "nofile.json", "--bucket", "x"], 2, /cannot read nofile\.json/],
    ["verify a missing input", ["verify", "--input", "nofile.jsonl"], 2, /cannot read nofile\.jsonl/],
    ["an unknown command", ["nosuchcommand"], 2, /unknown command/],
    ["a missing argument", ["validate"], 2, /missing required argument/],
  ])("%s: one line, no stack trace, the right exit code", async (_name, args, code, message) => {
    const result = await cli(args as string[]);

    expect(result.code).toBe(code);
    const output = `${result.out}${result.err}`;
    expect(output).toMatch(message as RegExp);
    expect(output).not.toMatch(STACK_FRAME);
  });

  it("says the same through the installed bin entry point, and shows the stack only with --debug", async () => {
    const bin = (extra: string[]) =>
      run(process.execPath, ["bin/recipe.mjs", "status", "t1", "--bucket", "x", ...extra], {
        env: noAws,
      }).catch((e: { code: number; stdout: string; stderr: string }) => e);

    const [plain, debug] = await Promise.all([bin([]), bin(["--debug"])]);

    expect((plain as { code?: number }).code).toBe(2);
    expect(plain.stderr).toMatch(/^error: no AWS region/);
    expect(plain.stderr).not.toMatch(STACK_FRAME);
    expect(debug.stderr).toMatch(STACK_FRAME);
  });

  it("refuses a run.json whose local source file does not exist, naming the user's path", async () => {
    const sample = JSON.parse(readFileSync("examples/run.sample.json", "utf8"));
    sample.sources.sft[0].uri = "data/missing.jsonl";
    const file = await tempFile("run.json", JSON.stringify(sample));

    const local = await cli(["validate", file]);
    const remote = await cli(["validate", file, "--remote", "--quiet"]);

    expect(local.code).toBe(2);
    expect(local.err).toContain("$.sources.sft[0].uri: no such file or folder");
    expect(local.err).toContain(join(file, "..", "data", "missing.jsonl"));
    expect(remote.code).toBe(0);
  });
});

describe("recipe run with a teacher that cannot answer", () => {
  it("fails before starting anything, naming the endpoint and the connection error", async () => {
    const { createServer } = await import("node:net");
    const closed = await new Promise<number>((r) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address() as { port: number };
        s.close(() => r(port));
      });
    });
    const url = `http://127.0.0.1:${closed}/v1`;
    const t0 = Date.now();

    const result = await cli([
      "run",
      "examples/run.sample.json",
      "--teacher-url",
      url,
      "--teacher-model",
      "m",
    ]);

    expect(result.code).toBe(1);
    expect(result.err).toContain(
      `run sample not started: cannot reach the endpoint ${url}: connection refused (ECONNREFUSED)`,
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});

describe("RL training from the base model", () => {
  const BASE_WARNING =
    "warning: $.training.rl.startModel: RL starts from the base model Qwen/Qwen2.5-VL-7B-Instruct, not from an SFT cold-start checkpoint as the recipe does; set training.sft.enabled to train one in this run (RL then starts from it), or training.rl.startModel to your SFT checkpoint (s3://…)";

  async function sampleWithTraining(training: Record<string, unknown>): Promise<string> {
    const { symlinkSync } = await import("node:fs");
    const { resolve } = await import("node:path");
    const folder = await mkdtemp(join(tmpdir(), "recipe-base-"));
    symlinkSync(resolve("examples/sample"), join(folder, "sample"));
    const sample = JSON.parse(readFileSync("examples/run.sample.json", "utf8"));
    writeFileSync(join(folder, "run.json"), JSON.stringify({ ...sample, training: { rl: training } }));
    return join(folder, "run.json");
  }

  it("recipe validate warns, locally and with --remote, and still passes", async () => {
    const file = await sampleWithTraining({ enabled: true });

    const local = await cli(["validate", file, "--quiet"]);
    const remote = await cli(["validate", file, "--quiet", "--remote"]);

    expect(local.code).toBe(0);
    expect(local.err.split("\n")).toContain(BASE_WARNING);
    expect(remote.err.split("\n")).toContain(BASE_WARNING);
  });

  it("recipe validate says nothing of it for an SFT checkpoint", async () => {
    const file = await sampleWithTraining({ enabled: true, startModel: "s3://my-bucket/models/sft/" });

    const result = await cli(["validate", file, "--quiet"]);

    expect(result.code).toBe(0);
    expect(result.err).not.toContain("startModel");
  });

  it("recipe run prints the warning before it starts anything", async () => {
    const { createServer } = await import("node:net");
    const closed = await new Promise<number>((r) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const { port } = s.address() as { port: number };
        s.close(() => r(port));
      });
    });
    const file = await sampleWithTraining({ enabled: true });

    // An endpoint that refuses the connection stops the run at its first check, after the warnings.
    const result = await cli([
      "run",
      file,
      "--teacher-url",
      `http://127.0.0.1:${closed}/v1`,
      "--teacher-model",
      "m",
    ]);

    expect(result.code).toBe(1);
    expect(result.err.split("\n")).toContain(BASE_WARNING);
    expect(result.err.indexOf(BASE_WARNING)).toBeLessThan(result.err.indexOf("not started"));
  });
});

describe("recipe outside the repository", () => {
  it("reads a run.json and its relative sources from the user's folder, wherever it runs from", async () => {
    const { symlinkSync } = await import("node:fs");
    const { resolve } = await import("node:path");
    const folder = await mkdtemp(join(tmpdir(), "recipe-user-"));
    symlinkSync(resolve("examples/sample"), join(folder, "sample"));
    writeFileSync(join(folder, "run.json"), readFileSync("examples/run.sample.json"));
    const bin = resolve("bin/recipe.mjs");

    const validate = await run(process.execPath, [bin, "validate", "run.json", "--quiet"], { cwd: folder });
    const estimate = await run(process.execPath, [bin, "estimate", "run.json", "--json"], { cwd: folder });

    expect(validate.stdout).toBe("run.json: OK\n");
    expect(JSON.parse(estimate.stdout).assumptions["SFT questions sent to the teacher"]).toMatch(
      /^\d+ \(counted/,
    );
  });
});
