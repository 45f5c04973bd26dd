// Stands in for `python3 -m verl.trainer.main_ppo` in launcher tests: resumes from the tracker file
// verl reads, "trains" 16 steps, writes a checkpoint folder the way verl does, and exits 0.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dir = join(process.env.RECIPE_WORKDIR, "checkpoints");
const tracker = join(dir, "latest_checkpointed_iteration.txt");
const from = existsSync(tracker) ? Number(readFileSync(tracker, "utf8")) : 0;
if (from > 0 && !existsSync(join(dir, `global_step_${from}`, "actor", "weights.bin"))) process.exit(9);
const step = from + 16;
mkdirSync(join(dir, `global_step_${step}`, "actor"), { recursive: true });
writeFileSync(join(dir, `global_step_${step}`, "actor", "weights.bin"), `weights after ${step} steps`);
writeFileSync(tracker, String(step));
const arg = (key) => process.argv.find((a) => a.startsWith(`${key}=`))?.slice(key.length + 1);
const model = arg("actor_rollout_ref.model.path");
// verl loads a model id or a local folder: a staged start model must be a folder with its config.
if (model?.startsWith("/") && !existsSync(join(model, "config.json"))) process.exit(8);
const runtimeEnv = Object.fromEntries(
  process.argv
    .filter((a) => a.startsWith("+ray_kwargs.ray_init.runtime_env.env_vars."))
    .map((a) => a.slice("+ray_kwargs.ray_init.runtime_env.env_vars.".length).split(/=(.*)/s).slice(0, 2)),
);
const { NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME, RECIPE_VERIFY_PRESET } = process.env;
console.log(
  JSON.stringify({
    resumedFrom: from,
    step,
    model,
    nnodes: Number(arg("trainer.nnodes")),
    trainFiles: arg("data.train_files"),
    valFiles: arg("data.val_files"),
    runtimeEnv,
    env: { NCCL_SOCKET_IFNAME, GLOO_SOCKET_IFNAME, RECIPE_VERIFY_PRESET },
  }),
);
