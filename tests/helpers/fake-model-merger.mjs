// Stands in for `python3 -m verl.model_merger` in launcher tests: checks the arguments verl 0.6.1's
// merger takes (merge --backend fsdp --local_dir <actor> --target_dir <dir>), that the actor folder
// holds the checkpoint's shards, and writes a Hugging Face folder from them.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
const arg = (key) => args[args.indexOf(key) + 1];
if (args[0] !== "merge" || arg("--backend") !== "fsdp") process.exit(2);
const actor = arg("--local_dir");
const target = arg("--target_dir");
if (!actor || !target || !existsSync(join(actor, "weights.bin"))) process.exit(4);
mkdirSync(join(target, "nested"), { recursive: true });
writeFileSync(join(target, "model.safetensors"), readFileSync(join(actor, "weights.bin")));
writeFileSync(join(target, "nested", "chat_template.jinja"), "{{ messages }}");
writeFileSync(
  join(target, "config.json"),
  JSON.stringify({ architectures: ["Qwen2_5_VLForConditionalGeneration"], mergedFrom: actor }),
);
