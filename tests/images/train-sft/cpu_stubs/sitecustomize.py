"""CPU run of lmms-engine (tests/images/train-sft): the CUDA device is the CPU.

lmms-engine 0.1.2's fsdp2_trainer path asks CUDA two things with no CPU branch: the device to place
the model on, `torch.cuda.current_device()` (utils/fsdp2_utils.py fsdp2_load_full_state_dict,
fsdp2_clip_grad_norm_), and the GPU's name for its MFU estimate, `torch.cuda.get_device_name()`
(utils/train_utils.py get_device_flops: an unknown name means infinite peak FLOPs, MFU 0). It does
pick gloo for `use_cpu`, and torch disables its cuda autocast when there is no GPU. With no GPU, and
only then, these two answer "cpu", so the same code runs: FSDP2 over gloo, one process. Loaded by
Python's `site` from PYTHONPATH, which only the CPU check sets.
"""

import torch

if not torch.cuda.is_available():
    torch.cuda.current_device = lambda: "cpu"
    torch.cuda.get_device_name = lambda device=None: "cpu"
