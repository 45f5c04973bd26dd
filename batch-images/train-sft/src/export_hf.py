"""Exports an lmms-engine 0.1.2 FSDP2 checkpoint as a Hugging Face model folder.

    python3 export_hf.py <checkpoint-dir> <out-dir>

<checkpoint-dir> is one `checkpoint-<step>/` folder with every rank's
`pytorch_model_fsdp_0/model_world_size_<W>_rank_<r>.pt` (the launcher gathers them from S3 on the
main node), the config.json and the processor files rank 0 saved. Each shard holds DTensors: a
sharded parameter is the concatenation of the ranks' local tensors along its Shard dimension, a
replicated one is any rank's copy. lmms-engine 0.1.2 has no merger of its own (0.1.4 adds
`lmms_engine.merger`, which does the same), so this is it. The weights are loaded into the
architecture config.json names, strictly (a missing or unexpected key fails), and saved as
safetensors with the processor, in bfloat16 (the training parameter dtype).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import torch


def load_shards(checkpoint: Path) -> list[dict]:
    folder = checkpoint / "pytorch_model_fsdp_0"
    files = sorted(folder.glob("model_world_size_*_rank_*.pt"))
    if not files:
        raise SystemExit(f"no model shards in {folder}")
    world = {int(re.search(r"world_size_(\d+)_", f.name).group(1)) for f in files}
    if len(world) != 1:
        raise SystemExit(f"shards of several world sizes in {folder}: {sorted(world)}")
    (size,) = world
    by_rank = {int(re.search(r"_rank_(\d+)\.pt$", f.name).group(1)): f for f in files}
    missing = [r for r in range(size) if r not in by_rank]
    if missing:
        raise SystemExit(f"{folder}: ranks {missing} of {size} missing")
    return [torch.load(by_rank[r], map_location="cpu", weights_only=False) for r in range(size)]


def consolidate(shards: list[dict]) -> dict[str, torch.Tensor]:
    from torch.distributed.tensor import Replicate, Shard

    full: dict[str, torch.Tensor] = {}
    for key in shards[0]:
        first = shards[0][key]
        if not hasattr(first, "_local_tensor"):
            full[key] = first  # a plain tensor (a buffer): the same on every rank
            continue
        placements = first.placements
        if len(placements) != 1:
            raise SystemExit(f"{key}: {len(placements)}-D device mesh; only plain FSDP2 (1-D) is exported")
        (p,) = placements
        if isinstance(p, Shard):
            tensor = torch.cat([s[key]._local_tensor for s in shards], dim=p.dim)
        elif isinstance(p, Replicate):
            tensor = first._local_tensor
        else:
            raise SystemExit(f"{key}: placement {p} is not Shard or Replicate")
        if tuple(tensor.shape) != tuple(first.shape):
            raise SystemExit(f"{key}: merged shape {tuple(tensor.shape)}, expected {tuple(first.shape)}")
        full[key] = tensor
    return full


def main(checkpoint: str, out: str) -> None:
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    ckpt = Path(checkpoint)
    state = consolidate(load_shards(ckpt))
    config = AutoConfig.from_pretrained(ckpt)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    result = model.load_state_dict({k: v.to(torch.bfloat16) for k, v in state.items()}, strict=False)
    # Buffers that are not persistent (rotary inv_freq) may be absent from the model's state dict.
    unexpected = [k for k in result.unexpected_keys if not k.endswith("inv_freq")]
    if result.missing_keys or unexpected:
        raise SystemExit(f"weights do not fit {type(model).__name__}: missing {result.missing_keys[:5]}, unexpected {unexpected[:5]}")
    model.save_pretrained(out, safe_serialization=True)
    AutoProcessor.from_pretrained(ckpt).save_pretrained(out)
    # transformers 4.57.1's Qwen2_5_VLConfig.to_dict() drops `architectures` (save_pretrained sets it,
    # the JSON loses it), and vLLM and train-rl's check pick the model class by config.json's
    # architectures[0], as in the released Qwen2.5-VL folders: written back here.
    config_file = Path(out) / "config.json"
    saved = json.loads(config_file.read_text())
    if not saved.get("architectures"):
        saved = {"architectures": [type(model).__name__], **saved}
        config_file.write_text(json.dumps(saved, indent=2, sort_keys=True) + "\n")
    n = sum(p.numel() for p in model.parameters())
    print(f"exported {type(model).__name__} ({n} parameters, {len(state)} tensors) from {ckpt} to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: export_hf.py <checkpoint-dir> <out-dir>")
    main(sys.argv[1], sys.argv[2])
