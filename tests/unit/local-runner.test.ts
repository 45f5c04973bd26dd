import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  entryProblem,
  jobDefinitions,
  jobEntry,
  jobImage,
  jobWorkdir,
  type LocalJobDefinition,
  localDefinition,
  localJobEnv,
  retryAction,
  startContainer,
  synthesizeTemplate,
} from "../../local/runner.ts";

const def: LocalJobDefinition = {
  image: "generate",
  environment: {},
  attempts: 10,
  evaluateOnExit: [
    { Action: "RETRY", OnStatusReason: "Host EC2*" },
    { Action: "RETRY", OnExitCode: "75" },
    { Action: "EXIT", OnExitCode: "3" },
  ],
};

describe("local Batch retry rules (evaluateOnExit)", () => {
  it("retries spot reclaims and exit 75, exits on 3, and retries what no rule matches", () => {
    expect(retryAction(def, null, "Host EC2 (instance i-1) terminated.")).toBe("RETRY");
    expect(retryAction(def, 75, "Essential container in task exited")).toBe("RETRY");
    expect(retryAction(def, 3, "Essential container in task exited")).toBe("EXIT");
    expect(retryAction(def, 1, "Essential container in task exited")).toBe("RETRY");
  });

  it("with the stack's rules: retries reclaims, exit 75 and image pulls, and stops on any other exit", () => {
    const defs = [...jobDefinitions(synthesizeTemplate()).values()];
    expect(defs.map((d) => d.image).sort()).toEqual([
      "evaluate",
      "generate",
      "train-rl",
      "train-rl",
      "train-sft",
      "train-sft",
    ]);
    expect(defs.filter((d) => d.multiNode).map((d) => d.multiNode)).toEqual([
      { numNodes: 2, mainNode: 0, openRange: true },
      { numNodes: 2, mainNode: 0, openRange: true },
    ]);
    for (const d of defs) {
      expect(retryAction(d, null, "Host EC2 (instance i-1) terminated.")).toBe("RETRY");
      expect(retryAction(d, 75, "Essential container in task exited")).toBe("RETRY");
      expect(
        retryAction(d, null, "Task failed to start", "CannotPullContainerError: pull access denied"),
      ).toBe("RETRY");
      // An OnReason rule matches only its reason: exit 1 or an OOM kill (137) is not retried ten times.
      expect(retryAction(d, 1, "Essential container in task exited")).toBe("EXIT");
      expect(retryAction(d, 137, "OutOfMemoryError: Container killed due to memory usage")).toBe("EXIT");
      expect(retryAction(d, 3, "Essential container in task exited")).toBe("EXIT");
    }
  }, 60_000);
});

describe("local Batch jobs of the training and evaluation images (no GPU here)", () => {
  it("runs each job definition's own image", () => {
    expect(
      [
        "GpuGenerate1A2B",
        "GpuTrainSft1A2B",
        "GpuTrainSftMultiNode1A2B",
        "GpuTrainRl1A2B",
        "GpuTrainRlMultiNode1A2B",
        "GpuEvaluate1A2B",
      ].map(jobImage),
    ).toEqual(["generate", "train-sft", "train-sft", "train-rl", "train-rl", "evaluate"]);
  });

  it("runs train-sft and evaluate as dry runs unless the images' Pythons are given", () => {
    const teacher = { RECIPE_SERVING: "endpoint", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" };
    expect(localJobEnv("train-sft", {}, teacher)).toEqual({ RECIPE_TRAIN_DRY_RUN: "1" });
    expect(localJobEnv("train-sft", { RECIPE_SFT_PYTHON: "/venv/bin/python" }, teacher)).toEqual({});
    expect(localJobEnv("evaluate", {}, teacher)).toEqual({ RECIPE_EVAL_DRY_RUN: "1" });
    // The real lmms-eval asks the local teacher for every model's answers, or the URL given.
    expect(localJobEnv("evaluate", { RECIPE_EVAL_PYTHON: "/venv/bin/python" }, teacher)).toEqual({
      RECIPE_EVAL_MODEL_URL: "http://127.0.0.1:9/v1",
    });
    expect(
      localJobEnv(
        "evaluate",
        { RECIPE_EVAL_PYTHON: "/p", RECIPE_EVAL_MODEL_URL: "http://127.0.0.1:7/v1" },
        teacher,
      ),
    ).toEqual({ RECIPE_EVAL_MODEL_URL: "http://127.0.0.1:7/v1" });
    expect(localJobEnv("train-rl", {}, teacher)).toEqual({ RECIPE_TRAIN_DRY_RUN: "1" });
    // Only the generate jobs are pointed at the teacher (evaluate's OPENAI_BASE_URL is the judge's).
    expect(localJobEnv("generate", {}, teacher)).toEqual(teacher);
  });

  it("fails a job whose image entry is not in the checkout, naming it, and finds those that are", () => {
    for (const image of ["generate", "train-rl", "train-sft", "evaluate"] as const) {
      const problem = entryProblem(image);
      if (existsSync(jobEntry(image))) expect(problem, image).toBeNull();
      else
        expect(problem).toBe(
          `batch-images/${image}/src/main.ts is missing from this checkout (the ${image} image's entry)`,
        );
    }
    expect(entryProblem("generate")).toBeNull();
    expect(entryProblem("train-rl")).toBeNull();
  });
});

describe("local definition", () => {
  const deployed = {
    StartAt: "Plan",
    TimeoutSeconds: 2592000,
    States: {
      Plan: { Type: "Pass", Next: "Items" },
      Items: {
        Type: "Map",
        ItemReader: {
          Resource: "arn:aws:states:::s3:getObject",
          ReaderConfig: { InputType: "JSON" },
          Parameters: { Bucket: "b", "Key.$": "$.plan.key" },
        },
        ResultWriter: {
          Resource: "arn:aws:states:::s3:putObject",
          Parameters: { Bucket: "b", Prefix: "tmp" },
        },
        MaxConcurrencyPath: "$.config.max",
        ItemProcessor: {
          ProcessorConfig: { Mode: "DISTRIBUTED" },
          StartAt: "Child",
          States: { Child: { Type: "Pass", End: true } },
        },
        Next: "Done",
      },
      Done: { Type: "Succeed" },
      Oops: { Type: "Fail", ErrorPath: "$.failure.error.Error", CausePath: "States.JsonToString($.failure)" },
    },
  };

  it("reads Distributed Map items in a state of the Map's own name, then maps over them", () => {
    const local = localDefinition(deployed as never, 3) as unknown as {
      States: Record<string, Record<string, unknown>>;
    };

    expect(local.States.Items).toMatchObject({
      Type: "Task",
      Resource: "arn:aws:states:::local:readItems",
      // The reader's and the writer's parameters: the state machine's role is checked for both.
      Parameters: { reader: { Bucket: "b", "Key.$": "$.plan.key" }, writer: { Bucket: "b", Prefix: "tmp" } },
      Next: "Items (local items)",
    });
    expect(local.States["Items (local items)"]).toMatchObject({
      Type: "Map",
      ItemsPath: "$.localItems",
      MaxConcurrency: 3,
      Next: "Done",
    });
    expect(local.States["Items (local items)"]).not.toHaveProperty("ItemReader");
    expect(local.States["Items (local items)"]).not.toHaveProperty("ResultWriter");
    expect(local).not.toHaveProperty("TimeoutSeconds");
  });

  it("evaluates an intrinsic CausePath in a Pass state before the Fail", () => {
    const local = localDefinition(deployed as never, 3) as unknown as {
      States: Record<string, Record<string, unknown>>;
    };

    expect(local.States.Oops).toMatchObject({
      Type: "Pass",
      Parameters: { "cause.$": "States.JsonToString($.failure)" },
      Next: "Oops (local)",
    });
    expect(local.States["Oops (local)"]).toMatchObject({ Type: "Fail", CausePath: "$.localFailCause.cause" });
  });

  it("leaves the deployed definition untouched", () => {
    const before = JSON.stringify(deployed);
    localDefinition(deployed as never, 3);

    expect(JSON.stringify(deployed)).toBe(before);
  });
});

describe("a local Batch container's disk and output", () => {
  it("starts each attempt on an empty scratch folder of its own job, and appends its output to the job's log", async () => {
    const root = mkdtempSync(join(tmpdir(), "recipe-container-"));
    const workdir = jobWorkdir(join(root, "train"), "TrainSft-run1");
    expect(workdir).toBe(join(root, "train", "TrainSft-run1"));
    expect(jobWorkdir(join(root, "train"), "Distill/x", 3)).toBe(join(root, "train", "Distill_x", "3"));
    // A killed attempt's leftovers (a half-written checkpoint) are not on the next attempt's disk.
    mkdirSync(join(workdir, "output", "checkpoint-2"), { recursive: true });
    writeFileSync(join(workdir, "output", "checkpoint-2", "half.pt"), "x");
    const logs = join(root, "logs");
    const ended = (s: NonNullable<ReturnType<typeof startContainer>>, text: string) =>
      new Promise<void>((r) => s.end(text, () => r()));
    const first = startContainer({ RECIPE_WORKDIR: workdir }, logs, "TrainSft-run1", 0, 1)!;
    expect(readdirSync(workdir)).toEqual([]);
    await ended(first, "resuming from checkpoint 1\n");
    await ended(startContainer({ RECIPE_WORKDIR: workdir }, logs, "TrainSft-run1", 0, 2)!, "done\n");
    const log = readFileSync(join(logs, "TrainSft-run1", "0.log"), "utf8");
    expect(log).toMatch(
      /^=== TrainSft-run1 \[0\] attempt 1 started .*\nresuming from checkpoint 1\n=== TrainSft-run1 \[0\] attempt 2 started .*\ndone\n$/,
    );
    // No log folder given: none written; no scratch folder: nothing removed.
    expect(startContainer({}, undefined, "TrainSft-run1", 0, 3)).toBeUndefined();
  });
});
