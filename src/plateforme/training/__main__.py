"""The trainer's command line, as the gateway runs it.

    python -m plateforme.training validate --job JOB.json
    python -m plateforme.training run --job JOB.json --workdir DIR
    python -m torch.distributed.run --nproc_per_node N -m plateforme.training run --job JOB.json --workdir DIR

stdout carries only JSON events, one per line: `validated` or `failed_validation` (with the
report), then for `run`: `resumed` (when DIR holds a checkpoint), `progress` after every step,
`checkpoint` after each saved checkpoint, and `succeeded` with the adapter GGUF's path.
A classifier job ("job_type": "classifier") trains a head over embeddings instead: see
classifier_process.py for its events (its `run` emits no `validated`, and `succeeded` gives the head).
Exit codes: 0 done, 3 failed validation, 4 cancelled (SIGTERM or SIGINT: the process stops at
once, printing nothing more; the last checkpoint stays usable), 1 any other failure, whose reason
is the last line of stderr (the log).
"""

import argparse
import logging
import os
import signal
import sys
import traceback
from pathlib import Path

# torch's OpenMP threads sleep between parallel regions instead of spinning (unless the operator
# says otherwise): the trainer shares its cores with the gateway and the llama.cpp workers, and a
# thread spinning at a barrier while its sibling waits for a core burned several times the work
# itself (measured on 2 busy cores: one LoRA step of the default model 25-35 s of CPU, 3.3 s passive).
# libgomp reads it once, when torch loads it: before any torch import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from plateforme.training.events import Events, claim_stdout  # noqa: E402
from plateforme.training.job import CLASSIFIER, Job, JobError, read_job  # noqa: E402

EXIT_OK, EXIT_FAILED, EXIT_FAILED_VALIDATION, EXIT_CANCELLED = 0, 1, 3, 4
log = logging.getLogger("plateforme.training")


def _cancel(signum, frame) -> None:
    # Checkpoints and the adapter are written under temporary names and renamed: stopping anywhere
    # leaves the last complete checkpoint in place. Events are flushed one by one as they are printed.
    os._exit(EXIT_CANCELLED)


def _set_threads(job: Job) -> None:
    import torch

    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(job.threads or max(1, cores // local_world))


def validate(job: Job, events: Events) -> int:
    if job.job_type == CLASSIFIER:  # no base model to load: the data checks only
        from plateforme.training.classifier_process import validate_classifier

        return validate_classifier(job, events)
    from plateforme.training.preparation import prepare

    _set_threads(job)
    prepared = prepare(job)
    events.emit("validated" if prepared.ok else "failed_validation", report=prepared.report)
    return EXIT_OK if prepared.ok else EXIT_FAILED_VALIDATION


def run(job: Job, workdir: Path, out) -> int:
    if job.job_type == CLASSIFIER:
        from plateforme.training.classifier_process import run_classifier

        return run_classifier(job, workdir.resolve(), Events(out if os.environ.get("RANK", "0") == "0" else None))
    import torch.distributed as dist

    from plateforme.training import distributed
    from plateforme.training.base_model import cached_model_dir
    from plateforme.training.preparation import prepare
    from plateforme.training.trainer import train_job

    ranks, device = distributed.start()
    try:
        events = Events(out if ranks.is_main else None)
        _set_threads(job)
        if not ranks.is_main:  # rank 0 fills the cache alone; the others then read it
            dist.barrier()
        prepared = prepare(job)
        if prepared.ok:
            cached_model_dir(job.cache_dir, job.base_gguf)
        if ranks.is_main and ranks.world > 1:
            dist.barrier()
        events.emit("validated" if prepared.ok else "failed_validation", report=prepared.report)
        if not prepared.ok:
            return EXIT_FAILED_VALIDATION
        train_job(job, prepared, workdir.resolve(), events, ranks, device)
        return EXIT_OK
    finally:
        distributed.stop()


def _failure(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, MemoryError) or "out of memory" in text.lower() or "can't allocate memory" in text:
        return (f"out of memory ({text}); lower hyperparameters.seq_len, or train on a machine with more "
                "memory")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plateforme.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["validate", "run"])
    parser.add_argument("--job", type=Path, required=True, help="the job file (job.json)")
    parser.add_argument("--workdir", type=Path, help="checkpoints and the adapter (run only)")
    args = parser.parse_args(argv)
    if args.mode == "run" and args.workdir is None:
        parser.error("run needs --workdir")
    out = claim_stdout()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' loading bars: log noise
    signal.signal(signal.SIGTERM, _cancel)
    signal.signal(signal.SIGINT, _cancel)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(asctime)s trainer[{os.environ.get('RANK', '0')}] %(levelname)s %(message)s")
    prefix = "training failed: " if args.mode == "run" else ""
    try:
        job = read_job(args.job)
        if args.mode == "validate":
            return validate(job, Events(out))
        return run(job, args.workdir, out)
    except JobError as exc:
        print(f"{prefix}{exc}", file=sys.stderr, flush=True)
    except Exception as exc:  # noqa: BLE001 - any failure ends with its one-line reason
        traceback.print_exc(file=sys.stderr)
        print(f"{prefix}{_failure(exc)}", file=sys.stderr, flush=True)
    return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
