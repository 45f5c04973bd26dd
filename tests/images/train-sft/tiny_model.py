"""A tiny Qwen2.5-VL-shaped model folder made here: Qwen2_5_VLForConditionalGeneration from a config
(2 text layers of width 64, a 2-block vision tower, random weights), with the offline processor of
tests/images/tiny_qwen_vl.py. Nothing is downloaded; lmms-engine loads it like the 7B model.

    python tiny_model.py <out-dir>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from tiny_qwen_vl import tiny_processor


def tiny_model_folder(out: str) -> str:
    processor = tiny_processor()
    tok = processor.tokenizer
    ids = {t: tok.convert_tokens_to_ids(t) for t in ["<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>"]}
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tok),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
            "tie_word_embeddings": False,
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
        torch_dtype="bfloat16",
    )
    torch.manual_seed(0)
    model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    # As in the released model's config.json (transformers 4.57.1's Qwen2_5_VLConfig drops it on save).
    path = Path(out) / "config.json"
    path.write_text(json.dumps({"architectures": [type(model).__name__], **json.loads(path.read_text())}, indent=2))
    return out


if __name__ == "__main__":
    print(tiny_model_folder(sys.argv[1]))
