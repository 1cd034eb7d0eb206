"""`run`: train the LoRA adapter step by step, checkpoint, evaluate, resume, and write the adapter GGUF.

Each step takes the plan's batch; under torchrun every rank takes its share of it, and the
gradients are summed across ranks before the update (see distributed.py). The loss is the mean
over the step's trained tokens (all ranks together), whatever the ranks and micro-batches.
Only rank 0 prints events and writes checkpoints and the adapter.
"""

import logging
import math
import os
import time
from pathlib import Path

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict

from plateforme.training import checkpoints, distributed
from plateforme.training.batches import Sums, collate, micro_batch_tokens, micro_batches, trained_token_sums
from plateforme.training.chat_rendering import TokenizedExample
from plateforme.training.events import Events
from plateforme.training.job import Job, JobError
from plateforme.training.lora_setup import lora_model, optimizer_and_schedule
from plateforme.training.preparation import Prepared

log = logging.getLogger("plateforme.training")
MAX_GRAD_NORM = 1.0
CHECKPOINTS_PER_JOB = 10  # when checkpoint_every is not given
ADAPTER_FILE = "adapter.gguf"


def checkpoint_every(job: Job, total_steps: int) -> int:
    return job.checkpoint_every or max(1, math.ceil(total_steps / CHECKPOINTS_PER_JOB))


class Trainer:
    def __init__(self, job: Job, prepared: Prepared, workdir: Path, events: Events,
                 ranks: distributed.Ranks, device: torch.device):
        assert prepared.plan is not None
        self.job, self.prepared, self.plan = job, prepared, prepared.plan
        self.workdir, self.events, self.ranks, self.device = workdir, events, ranks, device
        self.model = lora_model(job, device)
        self.parameters, self.optimizer, self.schedule = optimizer_and_schedule(
            self.model, job, self.plan.total_steps)
        self.micro_tokens = micro_batch_tokens(self.model.get_base_model().config, device, prepared.seq_len)
        self.step = 0
        self.trained_tokens = 0
        self.train_loss: float | None = None

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    def resume(self) -> None:
        checkpoint = checkpoints.latest(self.workdir)
        if checkpoint is None:
            return
        if checkpoint.state.get("plan") != self.plan.fingerprint():
            raise JobError(f"the work directory {self.workdir} holds a checkpoint of a different job (other data, "
                           "hyperparameters or seed); use an empty work directory")
        set_peft_model_state_dict(self.model, checkpoint.lora_state())
        states = checkpoint.optimizer_states()
        self.optimizer.load_state_dict(states["optimizer"])
        self.schedule.load_state_dict(states["schedule"])
        self.step = checkpoint.step
        self.trained_tokens = int(checkpoint.state["trained_tokens"])
        self.train_loss = checkpoint.state.get("train_loss")
        log.info("resuming from step %d of %d", self.step, self.plan.total_steps)
        self.events.emit("resumed", step=self.step)

    def _sums(self, examples: list[TokenizedExample], train: bool, scale: float) -> Sums:
        total = Sums(torch.zeros((), device=self.device), 0, 0)
        for group in micro_batches(examples, self.micro_tokens):
            ids, trained = collate(group, self.device)
            with self._autocast():
                sums = trained_token_sums(self.model, ids, trained)
            if train:
                (sums.loss * scale).backward()
            total = Sums(total.loss + sums.loss.detach(), total.correct + sums.correct, total.count + sums.count)
        return total

    def train_step(self) -> float:
        """One optimizer step on the plan's batch; the mean loss over its trained tokens."""
        examples = [self.prepared.data.train[i] for i in self.plan.steps[self.step]]
        count = sum(e.trained_tokens for e in examples)
        mine = self._sums(self.ranks.share(examples), train=True, scale=1.0 / count)
        loss_sum = distributed.sum_gradients(self.parameters, mine.loss.reshape(1).float())
        torch.nn.utils.clip_grad_norm_(self.parameters, MAX_GRAD_NORM)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.trained_tokens += self.plan.step_tokens[self.step]
        self.step += 1
        return float(loss_sum[0]) / count

    @torch.no_grad()
    def evaluate(self) -> tuple[float | None, float | None]:
        """(loss, mean token accuracy) over the validation files' trained tokens; None without them."""
        valid = sorted(self.prepared.data.valid, key=len, reverse=True)
        if not valid:
            return None, None
        sums = self._sums(self.ranks.share(valid), train=False, scale=0.0)
        totals = distributed.sum_across(
            torch.tensor([float(sums.loss), sums.correct, sums.count], dtype=torch.float64, device=self.device))
        loss, correct, count = totals.tolist()
        return loss / count, correct / count

    def checkpoint(self) -> None:
        valid_loss, valid_accuracy = self.evaluate()
        if not self.ranks.is_main:
            return
        state = {"step": self.step, "trained_tokens": self.trained_tokens, "train_loss": self.train_loss,
                 "valid_loss": valid_loss, "valid_mean_token_accuracy": valid_accuracy,
                 "plan": self.plan.fingerprint(), "total_steps": self.plan.total_steps}
        checkpoints.save(self.workdir, state, get_peft_model_state_dict(self.model),
                         {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict()})
        self.events.emit("checkpoint", step=self.step, train_loss=self.train_loss, valid_loss=valid_loss,
                         valid_mean_token_accuracy=valid_accuracy, trained_tokens=self.trained_tokens)

    def train(self) -> None:
        total, every = self.plan.total_steps, checkpoint_every(self.job, self.plan.total_steps)
        tokens, seconds = 0, 0.0  # this process's own training speed (loading and checkpoints excluded)
        while self.step < total:
            started = time.perf_counter()
            self.train_loss = self.train_step()
            seconds += time.perf_counter() - started
            tokens += self.plan.step_tokens[self.step - 1]
            self.events.emit("progress", step=self.step, total_steps=total, train_loss=self.train_loss,
                             trained_tokens=self.trained_tokens, tokens_per_s=round(tokens / seconds, 1))
            if self.step % every == 0 or self.step == total:
                self.checkpoint()

    def write_adapter(self) -> Path:
        from plateforme.training.adapter_gguf import write_lora_gguf

        out = self.workdir / ADAPTER_FILE
        tmp = self.workdir / f".tmp-{os.getpid()}-{ADAPTER_FILE}"
        write_lora_gguf(get_peft_model_state_dict(self.model), base_gguf=self.job.base_gguf,
                        alpha=float(self.job.hyperparameters.lora_alpha), out=tmp)
        os.replace(tmp, out)
        return out.resolve()


def train_job(job: Job, prepared: Prepared, workdir: Path, events: Events,
              ranks: distributed.Ranks, device: torch.device) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(job, prepared, workdir, events, ranks, device)
    trainer.resume()
    trainer.train()
    if ranks.is_main:
        adapter = trainer.write_adapter()
        h = job.hyperparameters
        events.emit("succeeded", adapter=str(adapter), trained_tokens=trainer.trained_tokens,
                    lora_alpha=h.lora_alpha, lora_rank=h.lora_rank)
