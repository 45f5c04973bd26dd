import { mkdirSync, mkdtempSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { listAll } from "../../core/shards/byte-store.ts";
import { FsStore } from "../../core/shards/fs-store.ts";
import { CheckpointSync, lmmsCheckpoint } from "../../core/train/checkpoints.ts";
import { nodeRole } from "../../core/train/cluster.ts";
import { checkpointStep } from "../../core/train/lmms-engine.ts";

const prefix = "runs/r/train-sft/checkpoints/";

/** Writes lmms-engine's files of one checkpoint for the given ranks (of `world`), as fsdp2_trainer saves them. */
function writeCheckpoint(dir: string, step: number, ranks: number[], world: number, last = true) {
  const root = join(dir, `checkpoint-${step}`);
  for (const sub of ["pytorch_model_fsdp_0", "optimizer", "extra_state", "dataloader_state"])
    mkdirSync(join(root, sub), { recursive: true });
  for (const r of ranks) {
    writeFileSync(join(root, "pytorch_model_fsdp_0", `model_world_size_${world}_rank_${r}.pt`), `m${r}`);
    writeFileSync(join(root, "optimizer", `optimizer_world_size_${world}_rank_${r}.pt`), `o${r}`);
    writeFileSync(join(root, "extra_state", `extra_state_world_size_${world}_rank_${r}.pt`), `e${r}`);
    if (last)
      writeFileSync(
        join(root, "dataloader_state", `dataloader_state_world_size_${world}_rank_${r}.pt`),
        `d${r}`,
      );
  }
  if (ranks.includes(0) && last) writeFileSync(join(root, "config.json"), "{}");
}

function age(dir: string, seconds: number) {
  const t = Date.now() / 1000 - seconds;
  const walk = (p: string): string[] => {
    try {
      return readdirSync(p).flatMap((e) => walk(join(p, e)));
    } catch {
      return [p];
    }
  };
  for (const f of walk(dir)) utimesSync(f, t, t);
}

function sync(store: FsStore, localDir: string, env: Record<string, string>, ranks: number[], world: number) {
  return new CheckpointSync({
    store,
    prefix,
    localDir,
    layout: {
      localName: (s) => `checkpoint-${s}`,
      stepOf: checkpointStep,
      settled: (dir) => lmmsCheckpoint.settled(dir, ranks, world, 30_000),
    },
    role: nodeRole(env),
    keep: 1,
    joinTimeoutMs: 0,
    pollMs: 1,
  });
}

describe("train-sft checkpoint sync", () => {
  it("copies a checkpoint only once written, marks it and completes it; a resume takes the newest complete one", async () => {
    const store = new FsStore(mkdtempSync(join(tmpdir(), "ck-")));
    const local = mkdtempSync(join(tmpdir(), "out-"));
    const s = sync(store, local, {}, [0], 1);
    writeCheckpoint(local, 2, [0], 1);
    age(join(local, "checkpoint-2"), 60);
    writeCheckpoint(local, 4, [0], 1, false); // still being written: no dataloader state, no config.json yet

    expect(await s.syncUp()).toEqual([2]);
    expect(await store.exists(`${prefix}2/_COMPLETE`)).toBe(true);
    expect(await store.exists(`${prefix}4/_NODE_0`)).toBe(false);

    writeCheckpoint(local, 4, [0], 1);
    expect(await s.syncUp()).toEqual([]); // written just now: not quiet for 30 s yet
    age(join(local, "checkpoint-4"), 60);
    expect(await s.syncUp()).toEqual([4]);
    // keep 1 on disk: the older step, already in S3, is deleted locally.
    expect(readdirSync(local)).toEqual(["checkpoint-4"]);

    const fresh = mkdtempSync(join(tmpdir(), "again-"));
    writeFileSync(join(fresh, "stale"), "x");
    const again = sync(store, fresh, {}, [0], 1);
    expect(await again.restoreNewest()).toBe(4);
    expect(readdirSync(fresh)).toEqual(["checkpoint-4"]);
    expect(readdirSync(join(fresh, "checkpoint-4")).sort()).toEqual(
      ["config.json", "dataloader_state", "extra_state", "optimizer", "pytorch_model_fsdp_0"].sort(),
    );
  });

  it("after a kill only settled folders go up; a half-written step is never resumed from", async () => {
    const store = new FsStore(mkdtempSync(join(tmpdir(), "ck-")));
    const local = mkdtempSync(join(tmpdir(), "out-"));
    const s = sync(store, local, {}, [0], 1);
    writeCheckpoint(local, 2, [0], 1);
    age(join(local, "checkpoint-2"), 60);
    writeCheckpoint(local, 4, [0], 1, false);
    await s.syncUp(false); // the launcher's pass after SIGTERM
    expect(await s.newestComplete()).toBe(2);
  });

  it("two nodes: a step is complete only when both have uploaded; each restores its own ranks", async () => {
    const store = new FsStore(mkdtempSync(join(tmpdir(), "ck-")));
    const env = { AWS_BATCH_JOB_NUM_NODES: "2", AWS_BATCH_JOB_MAIN_NODE_INDEX: "0" };
    const mainDir = mkdtempSync(join(tmpdir(), "n0-"));
    const otherDir = mkdtempSync(join(tmpdir(), "n1-"));
    const main = sync(store, mainDir, { ...env, AWS_BATCH_JOB_NODE_INDEX: "0" }, [0, 1], 4);
    const other = sync(store, otherDir, { ...env, AWS_BATCH_JOB_NODE_INDEX: "1" }, [2, 3], 4);
    writeCheckpoint(mainDir, 3, [0, 1], 4);
    writeCheckpoint(otherDir, 3, [2, 3], 4);

    await main.syncUp(true);
    expect(await store.exists(`${prefix}3/_COMPLETE`)).toBe(false);
    await other.syncUp(true);
    await main.syncUp(true);
    expect(await store.exists(`${prefix}3/_COMPLETE`)).toBe(true);

    const restored = mkdtempSync(join(tmpdir(), "r1-"));
    const again = sync(store, restored, { ...env, AWS_BATCH_JOB_NODE_INDEX: "1" }, [2, 3], 4);
    expect(await again.restoreNewest((rel) => lmmsCheckpoint.wanted(rel, [2, 3]))).toBe(3);
    expect(readdirSync(join(restored, "checkpoint-3", "optimizer")).sort()).toEqual([
      "optimizer_world_size_4_rank_2.pt",
      "optimizer_world_size_4_rank_3.pt",
    ]);
    expect((await listAll(store, `${prefix}3/pytorch_model_fsdp_0/`)).length).toBe(4);
  });
});
