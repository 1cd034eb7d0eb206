"""Micro-batches and the loss on them, without needless work.

Rows are whole conversations of similar lengths, right-padded: with causal attention a real token
never sees the padding after it, so no attention mask is needed (SDPA runs its plain causal
kernel) and padding only costs its own few positions. The vocabulary projection, the largest
matrix of a small model, is applied only where a token is trained on (assistant turns), not
on every prompt position.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from plateforme.training.chat_rendering import TokenizedExample

CPU_ACTIVATION_BYTES = 2 << 30  # activations kept for the backward pass of one micro-batch, on CPU
GPU_MEMORY_SHARE = 0.5  # of the GPU memory still free once the model is loaded


@dataclass
class Sums:
    """Loss summed over trained tokens, how many of them the model predicts right, how many there are."""
    loss: torch.Tensor
    correct: int
    count: int


def micro_batch_tokens(config, device: torch.device, seq_len: int) -> int:
    """Padded tokens per forward pass: what fits the memory given to activations (at least one sequence)."""
    layers = getattr(config, "num_hidden_layers", 32)
    hidden = getattr(config, "hidden_size", 4096)
    inner = getattr(config, "intermediate_size", 4 * hidden)
    per_token = layers * (10 * hidden + 5 * inner) * 4 + getattr(config, "vocab_size", 32000) * 8
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        budget = int(free * GPU_MEMORY_SHARE)
    else:
        budget = CPU_ACTIVATION_BYTES
    return max(seq_len, budget // per_token)


def micro_batches(examples: list[TokenizedExample], max_tokens: int) -> list[list[TokenizedExample]]:
    """`examples` in groups whose padded size (rows x longest) stays within `max_tokens`."""
    groups: list[list[TokenizedExample]] = []
    for example in sorted(examples, key=len, reverse=True):
        if groups and (len(groups[-1]) + 1) * len(groups[-1][0]) <= max_tokens:
            groups[-1].append(example)
        else:
            groups.append([example])
    return groups


def collate(examples: list[TokenizedExample], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, trained), both [rows, longest]; padding is token 0 and never trained on."""
    width = max(len(e) for e in examples)
    ids = torch.zeros(len(examples), width, dtype=torch.long)
    trained = torch.zeros(len(examples), width, dtype=torch.bool)
    for row, example in enumerate(examples):
        ids[row, :len(example)] = example.ids
        trained[row, :len(example)] = example.trained
    return ids.to(device), trained.to(device)


def _plain_output_head(config) -> bool:
    """Whether logits are just the output projection of the last hidden state (no scaling or capping)."""
    return (getattr(config, "final_logit_softcapping", None) is None
            and getattr(config, "logit_scale", None) in (None, 1, 1.0)
            and getattr(config, "logits_scaling", None) in (None, 1, 1.0))


def trained_token_sums(model, ids: torch.Tensor, trained: torch.Tensor) -> Sums:
    """Cross-entropy summed over the trained tokens of one micro-batch (`model`: a peft model)."""
    base = model.get_base_model()
    targets_at = trained[:, 1:]
    targets = ids[:, 1:][targets_at]
    if _plain_output_head(base.config):
        hidden = base.get_decoder()(input_ids=ids, use_cache=False).last_hidden_state
        logits = base.get_output_embeddings()(hidden[:, :-1][targets_at])
    else:
        logits = base(input_ids=ids, use_cache=False).logits[:, :-1][targets_at]
    logits = logits.float()
    loss = F.cross_entropy(logits, targets, reduction="sum")
    correct = int((logits.detach().argmax(-1) == targets).sum())
    return Sums(loss, correct, int(targets.numel()))
