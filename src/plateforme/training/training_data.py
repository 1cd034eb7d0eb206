"""Read the job's JSONL files: every line checked, formatted and tokenized, bad lines listed with why.

Lines holding only whitespace are ignored (not counted). A line longer than seq_len tokens is
refused (never truncated: a cut conversation would teach the model to stop mid-answer).
"""

import logging
from dataclasses import dataclass, field

from plateforme.training.chat_rendering import TokenizedExample, tokenize_conversation
from plateforme.training.conversation_checks import BadLine, check_line
from plateforme.training.job import DataFile, Job, JobError

log = logging.getLogger("plateforme.training")
REPORTED_ERRORS = 100


@dataclass(frozen=True)
class LineError:
    file_id: str
    line: int  # 1-based
    reason: str


@dataclass
class TrainingData:
    train: list[TokenizedExample] = field(default_factory=list)
    train_file: list[int] = field(default_factory=list)  # index in job.training_files of each example
    valid: list[TokenizedExample] = field(default_factory=list)
    lines: int = 0
    errors: list[LineError] = field(default_factory=list)

    @property
    def valid_lines(self) -> int:
        return self.lines - len(self.errors)

    @property
    def data_tokens(self) -> int:
        return sum(len(e) for e in self.train)

    def error_share(self) -> float:
        return len(self.errors) / self.lines if self.lines else 0.0


def _lines(data_file: DataFile, kind: str):
    try:
        with open(data_file.path, "rb") as handle:
            yield from enumerate(handle, start=1)
    except OSError as exc:
        raise JobError(f"cannot read {kind} file {data_file.file_id} at {data_file.path}: {exc.strerror}") from exc


def _example(raw: bytes, tokenizer, seq_len: int) -> TokenizedExample:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadLine("not UTF-8 text") from None
    example = tokenize_conversation(tokenizer, check_line(text))
    if len(example) > seq_len:
        raise BadLine(f"the conversation is {len(example)} tokens long once formatted, more than seq_len "
                      f"{seq_len}; shorten it, split it, or raise hyperparameters.seq_len")
    return example


def _read(data: TrainingData, data_file: DataFile, kind: str, tokenizer, seq_len: int):
    for number, raw in _lines(data_file, kind):
        if not raw.strip():
            continue
        data.lines += 1
        try:
            yield _example(raw, tokenizer, seq_len)
        except BadLine as exc:
            data.errors.append(LineError(data_file.file_id, number, str(exc)))


def read_training_data(job: Job, tokenizer, seq_len: int) -> TrainingData:
    data = TrainingData()
    for index, data_file in enumerate(job.training_files):
        for example in _read(data, data_file, "training", tokenizer, seq_len):
            data.train.append(example)
            data.train_file.append(index)
    if data.lines == 0:
        raise JobError("the training files hold no line; upload a JSONL file with one conversation per line")
    for data_file in job.validation_files:
        data.valid.extend(_read(data, data_file, "validation", tokenizer, seq_len))
    log.info("read %d lines: %d training and %d validation examples, %d bad lines",
             data.lines, len(data.train), len(data.valid), len(data.errors))
    return data


def acceptable(data: TrainingData, job: Job) -> bool:
    """Whether training can go on: some valid training line, and not more bad lines than tolerated."""
    return bool(data.train) and data.error_share() <= job.invalid_sample_skip_percentage
