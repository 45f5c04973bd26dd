export * from "./byte-store.ts";
export { FsStore } from "./fs-store.ts";
export * from "./jsonl.ts";
