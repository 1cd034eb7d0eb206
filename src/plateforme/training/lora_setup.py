"""The LoRA model, its optimizer and its learning-rate schedule.

LoRA (peft) on every linear projection of attention and MLP, lora_alpha = 2 x rank, no dropout.
AdamW with weight decay; linear warm-up over warmup_fraction of the steps, then cosine decay to 0.
On CPU everything is float32; on CUDA the frozen base is bfloat16 (LoRA weights stay float32).
"""

import torch
from peft import LoraConfig, get_peft_model
from transformers import get_cosine_schedule_with_warmup

from plateforme.training.base_model import load_model
from plateforme.training.job import Job, JobError

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_model(job: Job, device: torch.device):
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    base = load_model(job.cache_dir, job.base_gguf, dtype)
    present = {name.rsplit(".", 1)[-1] for name, module in base.named_modules() if isinstance(module, torch.nn.Linear)}
    targets = [t for t in LORA_TARGETS if t in present]
    if not targets:
        raise JobError(f"the base model has none of the projections LoRA is applied to ({', '.join(LORA_TARGETS)}); "
                       "this architecture cannot be fine-tuned yet")
    torch.manual_seed(job.seed)  # the same initial LoRA weights on every rank
    rank = job.hyperparameters.lora_rank
    config = LoraConfig(r=rank, lora_alpha=job.hyperparameters.lora_alpha, lora_dropout=0.0,
                        target_modules=targets, task_type="CAUSAL_LM")
    model = get_peft_model(base, config).to(device)
    model.train()
    return model


def optimizer_and_schedule(model, job: Job, total_steps: int):
    h = job.hyperparameters
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=h.learning_rate, weight_decay=h.weight_decay)
    schedule = get_cosine_schedule_with_warmup(optimizer, round(h.warmup_fraction * total_steps), total_steps)
    return parameters, optimizer, schedule
