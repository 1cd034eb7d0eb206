"""The trainers' cache of base-model files (training/base_model.py): an entry is built once, even
when several jobs ask for it at the same moment, and a failed build leaves nothing behind."""

import threading
import time

import pytest

from plateforme.training.base_model import _cached


def test_concurrent_jobs_build_an_entry_once(tmp_path):
    builds = []

    def build(tmp):
        builds.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the others to arrive while it runs
        tmp.mkdir()
        (tmp / "weights").write_text("w")

    final = tmp_path / "entry" / "model"
    results = []
    threads = [threading.Thread(target=lambda: results.append(_cached(final, build))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [final] * 3 and len(builds) == 1
    assert (final / "weights").read_text() == "w"
    assert _cached(final, build) == final and len(builds) == 1  # later jobs read it


def test_a_failed_build_leaves_no_entry_and_the_next_job_builds_it(tmp_path):
    final = tmp_path / "entry" / "model"

    def failing(tmp):
        tmp.mkdir()
        (tmp / "half").write_text("x")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        _cached(final, failing)
    assert not final.exists() and not [p for p in final.parent.iterdir() if p.name.startswith(".tmp-")]
    assert _cached(final, lambda tmp: tmp.mkdir()) == final and final.is_dir()
