"""CPU stand-in for flash-attn (a CUDA kernel package; the train-sft image installs flash-attn 2.8.3).

lmms-engine 0.1.2 imports `flash_attn_varlen_func` unconditionally in its Bagel model
(models/bagel/siglip_navit.py, qwen2_navit.py), which `lmms_engine.launch.cli` imports through its
model registry, so without this nothing of lmms-engine imports on a machine with no GPU. Only that
name exists, and calling it fails: every other `from flash_attn import ...` in lmms-engine is guarded
and still sees no flash-attn (ImportError), so the CPU run uses SDPA and no remove-padding.
"""


def flash_attn_varlen_func(*args, **kwargs):
    raise RuntimeError("flash-attn is a CUDA kernel: this CPU stand-in only lets lmms-engine import")
