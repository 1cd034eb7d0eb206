"""Resumable checkpoints in the work directory, written atomically.

<workdir>/checkpoint-<step>/
    adapter.safetensors   the LoRA weights (peft's adapter state dict)
    optimizer.pt          AdamW and learning-rate schedule states
    state.json            step, trained tokens, last losses, the plan's fingerprint

A checkpoint is written into a temporary directory, flushed to disk and renamed into place; only
then are older ones removed. A kill at any moment leaves the previous checkpoint usable.
"""

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

PREFIX = "checkpoint-"


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    state: dict

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def lora_state(self) -> dict[str, torch.Tensor]:
        return load_file(self.path / "adapter.safetensors")

    def optimizer_states(self) -> dict:
        return torch.load(self.path / "optimizer.pt", map_location="cpu", weights_only=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def latest(workdir: Path) -> Checkpoint | None:
    """The checkpoint with the highest step in `workdir`, if any."""
    found = []
    for path in workdir.glob(f"{PREFIX}*"):
        suffix = path.name[len(PREFIX):]
        if suffix.isdigit() and (path / "state.json").is_file():
            found.append((int(suffix), path))
    if not found:
        return None
    _, path = max(found)
    return Checkpoint(path, json.loads((path / "state.json").read_text()))


def save(workdir: Path, state: dict, lora_state: dict[str, torch.Tensor], optimizer_states: dict) -> Checkpoint:
    """Write the checkpoint of `state["step"]` and remove the older ones."""
    final = workdir / f"{PREFIX}{state['step']:08d}"
    tmp = workdir / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in lora_state.items()}, tmp / "adapter.safetensors")
        torch.save(optimizer_states, tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state))
        for name in ("adapter.safetensors", "optimizer.pt", "state.json"):
            _fsync(tmp / name)
        os.rename(tmp, final)
        _fsync(workdir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in workdir.iterdir():
        if old != final and (old.name.startswith(PREFIX) or old.name.startswith(f".tmp-{PREFIX}")):
            shutil.rmtree(old, ignore_errors=True)
    return Checkpoint(final, state)
