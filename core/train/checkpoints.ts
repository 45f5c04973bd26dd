/**
 * A training job's checkpoints in S3, for a trainer that writes numbered checkpoint folders to local
 * disk on every node (lmms-engine's `checkpoint-<step>/`, one file per rank): each node copies the
 * folders it has finished writing to `<prefix><step>/` and marks them (`_NODE_<i>`); the main node
 * writes `_COMPLETE` once every node's marker is there, and a resume trusts only a step with it. The
 * same protocol as the train-rl launcher's verl checkpoints (its `global_step_<n>/` folders keep their
 * own copy there). Node I/O over a ByteStore and the local disk; the decisions are pure functions.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import pLimit from "p-limit";
import { InputContractError } from "../errors.ts";
import { type ByteStore, listAll } from "../shards/byte-store.ts";
import { FsStore } from "../shards/fs-store.ts";
import type { NodeRole } from "./cluster.ts";

export const CHECKPOINT_DONE = "_COMPLETE";
export const nodeMarker = (index: number) => `_NODE_${index}`;

/** Files copied at once. */
const COPY_CONCURRENCY = 8;

export interface CheckpointLayout {
  /** The local folder of a step (`checkpoint-<step>`), and the step of a local folder name (null: not one). */
  localName: (step: number) => string;
  stepOf: (name: string) => number | null;
  /**
   * Whether a local step folder, not the final pass's, is fully written on this node (the trainer
   * gives no other sign). A folder older than the newest is always settled.
   */
  settled: (dir: string, step: number) => boolean;
}

export interface CheckpointSyncOptions {
  store: ByteStore;
  /** The S3 prefix the steps go under: `<prefix><step>/...`. */
  prefix: string;
  localDir: string;
  layout: CheckpointLayout;
  role: NodeRole;
  /** Folders kept on this node's disk once in S3 (the trainer prunes only on its rank 0). */
  keep: number;
  /** Final pass on the main node: how long it waits for the other nodes' markers, and how often it looks. */
  joinTimeoutMs: number;
  pollMs: number;
  log?: (line: string) => void;
}

/** The newest step with `_COMPLETE`, from a listing of keys under the prefix. */
export function newestCompleteStep(keysUnderPrefix: readonly string[], prefix: string): number | null {
  let best: number | null = null;
  for (const k of keysUnderPrefix) {
    const m = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(\\d+)/${CHECKPOINT_DONE}$`).exec(
      k,
    );
    if (m) best = Math.max(best ?? 0, Number(m[1]));
  }
  return best;
}

function walk(p: string): string[] {
  return statSync(p).isDirectory() ? readdirSync(p).flatMap((e) => walk(join(p, e))) : [p];
}

export class CheckpointSync {
  /** Local step folders already in S3 (or restored from it). */
  readonly uploaded = new Set<number>();
  constructor(readonly o: CheckpointSyncOptions) {}

  private localSteps(): number[] {
    let names: string[] = [];
    try {
      names = readdirSync(this.o.localDir);
    } catch {
      return [];
    }
    return names
      .map((n) => this.o.layout.stepOf(n))
      .filter((s): s is number => s !== null)
      .sort((a, b) => a - b);
  }

  /**
   * Copies this node's finished step folders to S3 and marks them; on the main node, completes the
   * steps every node has marked. Returns the steps copied.
   */
  async syncUp(final = false): Promise<number[]> {
    const steps = this.localSteps();
    const newest = steps.at(-1);
    const copied: number[] = [];
    const limit = pLimit(COPY_CONCURRENCY);
    for (const step of steps) {
      if (this.uploaded.has(step)) continue;
      const dir = join(this.o.localDir, this.o.layout.localName(step));
      if (!final && step === newest && !this.o.layout.settled(dir, step)) continue; // may still be written
      const local = new FsStore(dir);
      const files = walk(dir).map((f) => relative(dir, f).split("\\").join("/"));
      await Promise.all(
        files.map((rel) =>
          limit(async () => this.o.store.write(`${this.o.prefix}${step}/${rel}`, await local.read(rel))),
        ),
      );
      // The marker goes last: a step without every node's marker is an interrupted upload.
      await this.o.store.write(`${this.o.prefix}${step}/${nodeMarker(this.o.role.index)}`, "");
      this.uploaded.add(step);
      copied.push(step);
      this.o.log?.(`checkpoint ${step}: ${files.length} files of node ${this.o.role.index} in S3`);
    }
    if (this.o.role.isMain) await this.complete(final);
    this.prune(steps);
    return copied;
  }

  /** Main node: `_COMPLETE` for each uploaded step every node has marked (bounded wait on the final pass). */
  private async complete(final: boolean) {
    const { role } = this.o;
    const until = Date.now() + (final && role.nodes > 1 ? this.o.joinTimeoutMs : 0);
    for (const step of [...this.uploaded].sort((a, b) => a - b)) {
      const done = `${this.o.prefix}${step}/${CHECKPOINT_DONE}`;
      for (;;) {
        if (await this.o.store.exists(done)) break;
        const marks = await Promise.all(
          Array.from({ length: role.nodes }, (_, i) =>
            this.o.store.exists(`${this.o.prefix}${step}/${nodeMarker(i)}`),
          ),
        );
        if (marks.every(Boolean)) {
          await this.o.store.write(done, "");
          this.o.log?.(`checkpoint ${step}: complete`);
          break;
        }
        if (Date.now() >= until) break;
        await new Promise((r) => setTimeout(r, this.o.pollMs));
      }
    }
  }

  /** Keeps the newest `keep` local folders; only folders already in S3 are deleted. */
  private prune(steps: number[]) {
    for (const step of [...steps].reverse().slice(this.o.keep)) {
      if (this.uploaded.has(step))
        rmSync(join(this.o.localDir, this.o.layout.localName(step)), { recursive: true, force: true });
    }
  }

  /** The newest complete step in S3, or null. */
  async newestComplete(): Promise<number | null> {
    return newestCompleteStep(await listAll(this.o.store, this.o.prefix), this.o.prefix);
  }

  /**
   * Empties the local folder and copies the newest complete step back into it (only the files `want`
   * accepts: a node needs its own ranks' shards). Returns the step, or null when there is none.
   */
  async restoreNewest(want: (rel: string) => boolean = () => true): Promise<number | null> {
    rmSync(this.o.localDir, { recursive: true, force: true });
    mkdirSync(this.o.localDir, { recursive: true });
    const all = await listAll(this.o.store, this.o.prefix);
    const step = newestCompleteStep(all, this.o.prefix);
    if (step === null) return null;
    await this.download(step, want, all);
    this.uploaded.add(step);
    return step;
  }

  /** Copies the files of one step from S3 that `want` accepts and are not on local disk yet. */
  async download(step: number, want: (rel: string) => boolean, listing?: string[]): Promise<number> {
    const from = `${this.o.prefix}${step}/`;
    const all = listing ?? (await listAll(this.o.store, from));
    const local = new FsStore(join(this.o.localDir, this.o.layout.localName(step)));
    const limit = pLimit(COPY_CONCURRENCY);
    const wanted = all
      .filter((k) => k.startsWith(from))
      .map((k) => k.slice(from.length))
      .filter((rel) => rel !== CHECKPOINT_DONE && !/^_NODE_\d+$/.test(rel) && want(rel));
    let copied = 0;
    await Promise.all(
      wanted.map((rel) =>
        limit(async () => {
          if (await local.exists(rel)) return;
          await local.write(rel, await this.o.store.read(`${from}${rel}`));
          copied++;
        }),
      ),
    );
    return copied;
  }
}

/** The processes (global ranks) a node runs: `procsPerNode` consecutive ranks from its torchrun node rank. */
export function nodeRanks(nodeRank: number, procsPerNode: number): number[] {
  return Array.from({ length: procsPerNode }, (_, i) => nodeRank * procsPerNode + i);
}

/**
 * lmms-engine 0.1.2's FSDP2 checkpoint (train/fsdp2/fsdp2_trainer.py save_checkpoints): per rank
 * `pytorch_model_fsdp_0/model_world_size_<W>_rank_<r>.pt`, `optimizer/...`, `extra_state/...` and
 * `dataloader_state/...` (each rank saves it last), then, on rank 0, the processor and config.json.
 */
export const lmmsCheckpoint = {
  shardRe: /_world_size_(\d+)_rank_(\d+)\.pt$/,
  /** A file of the checkpoint a node needs to resume: shared files, and its own ranks' shards. */
  wanted(rel: string, ranks: readonly number[]): boolean {
    const m = lmmsCheckpoint.shardRe.exec(rel);
    return !m || ranks.includes(Number(m[2]));
  },
  /** The world size a checkpoint's shards were written by (null: no shards among the names). */
  worldSize(names: readonly string[]): number | null {
    for (const n of names) {
      const m = lmmsCheckpoint.shardRe.exec(n);
      if (m) return Number(m[1]);
    }
    return null;
  },
  /**
   * Whether this node's part of a checkpoint folder is written: every one of its ranks' dataloader
   * state (saved last) is there, config.json too on the node of rank 0, and nothing in the folder
   * changed for `quietMs` (torch.save writes in place).
   */
  settled(
    dir: string,
    ranks: readonly number[],
    worldSize: number,
    quietMs: number,
    now = Date.now(),
  ): boolean {
    let files: string[];
    try {
      files = walk(dir);
    } catch {
      return false;
    }
    const names = new Set(files.map((f) => relative(dir, f).split("\\").join("/")));
    for (const r of ranks)
      if (!names.has(`dataloader_state/dataloader_state_world_size_${worldSize}_rank_${r}.pt`)) return false;
    if (ranks.includes(0) && !names.has("config.json")) return false;
    return files.every((f) => now - statSync(f).mtimeMs >= quietMs);
  },
};

/** Refuses to resume from a checkpoint written by another number of processes (its shards would not be found). */
export function checkResumeWorldSize(step: number, written: number | null, current: number): void {
  if (written !== null && written !== current)
    throw new InputContractError(
      `checkpoint ${step} was written by ${written} processes but this job runs ${current}: keep training.sft.nodes and gpusPerNode, or start a new run`,
    );
}
