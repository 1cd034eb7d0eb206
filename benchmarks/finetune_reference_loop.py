"""A plain transformers + peft fine-tuning loop: the reference the platform's trainer is measured against.

Written the way a user would without the platform: load the GGUF with transformers (dequantised
to float32), wrap it in a LoRA adapter on every attention and MLP projection (lora_alpha = 2 x
rank), and train with AdamW (gradients clipped to norm 1) and a warm-up + cosine schedule on padded batches of the chat lines,
with the loss only on the assistant's tokens. Reports trained tokens/s (tokens of the training
sequences, padding excluded, over the time spent in training steps) and, with --evaluate, the
held-out accuracy before and after, answered by greedy generation.

    python benchmarks/finetune_reference_loop.py [--epochs 10 --learning-rate 1e-3 ...] [--evaluate]
"""

import argparse
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

sys.path.insert(0, str(Path(__file__).parent))
from finetune_dataset import FACTS, heldout_questions, is_correct, training_lines  # noqa: E402

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
IGNORE = -100
MAX_GRAD_NORM = 1.0


@dataclass
class Settings:
    lora_rank: int = 16
    learning_rate: float = 1e-3
    epochs: int = 10
    batch_size: int = 8
    warmup_fraction: float = 0.1
    weight_decay: float = 0.0
    seed: int = 0


def default_gguf() -> Path:
    """The GGUF of the platform's default model (the first one of its packaged config)."""
    from plateforme.models.registry import ModelRegistry

    return Path(ModelRegistry.from_file(None).specs[0].weights_path())


def load_base(gguf: Path):
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    return model, tokenizer


def encode(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """Token ids of one conversation and its labels: the last (assistant) turn only, the rest ignored."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    turn_ids = tokenizer(full.rstrip(), add_special_tokens=False)["input_ids"]  # up to the end-of-turn marker
    ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    assert ids[:len(turn_ids)] == turn_ids and turn_ids[:len(prompt_ids)] == prompt_ids, \
        "the chat template does not render the conversation as prompt + answer"
    labels = [IGNORE] * len(prompt_ids) + turn_ids[len(prompt_ids):]
    return ids, labels + [IGNORE] * (len(ids) - len(labels))


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    batch = {"input_ids": [], "attention_mask": [], "labels": []}
    for ids, labels in examples:
        pad = width - len(ids)
        batch["input_ids"].append(ids + [pad_id] * pad)
        batch["attention_mask"].append([1] * len(ids) + [0] * pad)
        batch["labels"].append(labels + [IGNORE] * pad)
    return {name: torch.tensor(rows) for name, rows in batch.items()}


def add_lora(model, rank: int):
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=LORA_TARGETS,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def train(model, tokenizer, lines: list[dict], settings: Settings, log=print) -> dict:
    """Train `model` (a peft model) in place; returns tokens, seconds and tokens/s of the training steps."""
    torch.manual_seed(settings.seed)
    order = random.Random(settings.seed)
    examples = [encode(tokenizer, line["messages"]) for line in lines]
    steps_per_epoch = math.ceil(len(examples) / settings.batch_size)
    total_steps = steps_per_epoch * settings.epochs
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = get_cosine_schedule_with_warmup(optimizer, round(settings.warmup_fraction * total_steps), total_steps)
    model.train()
    tokens, seconds, losses = 0, 0.0, []
    for epoch in range(settings.epochs):
        shuffled = order.sample(examples, len(examples))
        epoch_loss = 0.0
        for start in range(0, len(shuffled), settings.batch_size):
            batch = collate(shuffled[start:start + settings.batch_size], tokenizer.pad_token_id)
            started = time.perf_counter()
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, MAX_GRAD_NORM)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            seconds += time.perf_counter() - started
            tokens += int(batch["attention_mask"].sum())
            epoch_loss += loss.item()
        losses.append(epoch_loss / steps_per_epoch)
        log(f"  epoch {epoch + 1}/{settings.epochs}: loss {losses[-1]:.4f}, "
            f"{tokens} tokens in {seconds:.1f}s ({tokens / seconds:.0f} tokens/s)")
    model.eval()
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds, "steps": total_steps,
            "epoch_losses": losses}


@torch.no_grad()
def answers(model, tokenizer, questions: list[str], max_new_tokens: int = 32) -> list[str]:
    """Greedy answers, all questions in one left-padded batch."""
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                             add_generation_prompt=True) for q in questions]
    tokenizer.padding_side = "left"
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)


def evaluate(model, tokenizer) -> dict:
    heldout = heldout_questions()
    replies = answers(model, tokenizer, [h["question"] for h in heldout])
    rows = [{**h, "answer": reply, "correct": is_correct(reply, h["key"])} for h, reply in zip(heldout, replies)]
    return {"accuracy": sum(r["correct"] for r in rows) / len(rows), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Settings()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--gguf", type=Path, default=None, help="default: the default model's GGUF")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--evaluate", action="store_true", help="held-out accuracy before and after training")
    parser.add_argument("--json", type=Path, default=None, help="write the results there")
    args = parser.parse_args()
    settings = Settings(**{name: getattr(args, name) for name in asdict(defaults)})

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model, tokenizer = load_base(args.gguf or default_gguf())
    print(f"base model loaded in {time.perf_counter() - started:.1f}s; {len(FACTS)} facts, "
          f"{len(training_lines())} training lines; {settings}", flush=True)
    result: dict = {"settings": asdict(settings), "torch_threads": torch.get_num_threads()}
    if args.evaluate:
        result["before"] = evaluate(model, tokenizer)
        print(f"accuracy before: {result['before']['accuracy']:.0%}", flush=True)
    model = add_lora(model, settings.lora_rank)
    result["training"] = train(model, tokenizer, training_lines(), settings, log=lambda m: print(m, flush=True))
    if args.evaluate:
        result["after"] = evaluate(model, tokenizer)
        for row in result["after"]["rows"]:
            print(f"  [{'x' if row['correct'] else ' '}] {row['question']} -> {row['answer']!r}")
        print(f"accuracy after: {result['after']['accuracy']:.0%}")
    t = result["training"]
    print(f"trained {t['tokens']} tokens in {t['seconds']:.1f}s: {t['tokens_per_s']:.0f} tokens/s; "
          f"total wall {time.perf_counter() - started:.0f}s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
