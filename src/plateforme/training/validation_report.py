"""The report of `validate` (and the first event of `run`): line counts, errors, tokens and steps."""

from dataclasses import asdict

from plateforme.training.schedule import Plan
from plateforme.training.training_data import REPORTED_ERRORS, TrainingData


def build_report(data: TrainingData, plan: Plan | None) -> dict:
    return {
        "lines": data.lines,
        "valid_lines": data.valid_lines,
        "errors": [asdict(e) for e in data.errors[:REPORTED_ERRORS]],
        "errors_total": len(data.errors),
        "data_tokens": data.data_tokens,
        "train_tokens_per_step": plan.tokens_per_step if plan else 0,
        "training_steps": plan.total_steps if plan else 0,
        "epochs": round(plan.epochs, 4) if plan else 0.0,
        "train_tokens": plan.train_tokens if plan else 0,
    }
