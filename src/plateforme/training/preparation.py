"""What `validate` and `run` both do first: read the base model's facts and tokenizer, check and
tokenize the data, plan the steps and build the validation report."""

from dataclasses import dataclass

from plateforme.training.base_model import default_seq_len, gguf_facts, load_tokenizer
from plateforme.training.job import Job
from plateforme.training.schedule import Plan, make_plan
from plateforme.training.training_data import TrainingData, acceptable, read_training_data
from plateforme.training.validation_report import build_report


@dataclass
class Prepared:
    tokenizer: object
    seq_len: int
    data: TrainingData
    plan: Plan | None
    report: dict
    ok: bool  # False: the job fails validation (too many bad lines, or no valid training line)


def prepare(job: Job) -> Prepared:
    facts = gguf_facts(job.base_gguf)
    seq_len = default_seq_len(job.hyperparameters.seq_len, facts)
    tokenizer = load_tokenizer(job.cache_dir, job.base_gguf)
    data = read_training_data(job, tokenizer, seq_len)
    plan = None
    if data.train:
        h = job.hyperparameters
        plan = make_plan([len(e) for e in data.train], data.train_file,
                         [f.weight for f in job.training_files], h.training_steps, h.epochs, job.seed)
    return Prepared(tokenizer, seq_len, data, plan, build_report(data, plan), acceptable(data, job))
