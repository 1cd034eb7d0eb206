"""Fine-tuning job state in the database (SQLite and PostgreSQL): status moves are
compare-and-set with their event and follow the one table of statuses, filters and pages work,
workspaces are apart, unknown fine-tune ids do not read the database on every request."""

import ast
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from plateforme import fine_tuning
from plateforme.fine_tuning import statuses as st
from plateforme.fine_tuning.errors import FineTunedModelNotFound, JobNotFound
from plateforme.fine_tuning.fine_tuned_models import UNKNOWN_FOR_S, FineTunedModels, fine_tuned_model_id
from plateforme.fine_tuning.job_store import JobFilters, JobStore
from plateforme.storage.database import open_database
from plateforme.storage.fine_tuning_tables import FineTuningJob
from plateforme.storage.tables import Workspace

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(database_url):
    db = open_database(database_url)
    with db.session() as s:
        s.add_all([Workspace(id=w, name=w, created_at=NOW, budget_period="month") for w in ("ws_a", "ws_b")])
        s.commit()
    yield JobStore(db)
    db.dispose()


def job(job_id: str, workspace: str = "ws_a", minutes: int = 0, **fields) -> FineTuningJob:
    at = NOW + timedelta(minutes=minutes)
    values = dict(id=job_id, workspace_id=workspace, created_by="user_1", model="base", status=st.QUEUED,
                  auto_start=True, suffix=None, hyperparameters={"training_steps": 2}, training_files=[],
                  validation_files=[], invalid_sample_skip_percentage=0.0, created_at=at, modified_at=at)
    values.update(fields)
    return FineTuningJob(**values)


def test_status_moves_are_compare_and_set_and_leave_events(store):
    store.add(job("j1"))
    assert store.move("j1", st.VALIDATING)
    assert not store.move("j1", st.VALIDATING, {st.QUEUED})  # a second taker loses
    assert not store.move("j1", st.SUCCESS)  # not a legal move from VALIDATING
    assert store.move("j1", st.VALIDATED, data={"valid_lines": 3}, job_metadata={"train_tokens": 10})
    detail = store.detail("ws_a", "j1")
    assert detail.job.status == st.VALIDATED and detail.job.job_metadata == {"train_tokens": 10}
    assert [(e.data["status"]) for e in detail.events] == [st.QUEUED, st.VALIDATING, st.VALIDATED]
    assert detail.events[-1].data["valid_lines"] == 3


def test_checkpoints_newest_first_and_trained_tokens(store):
    store.add(job("j1", status=st.RUNNING))
    store.add_checkpoint("j1", 1, 2.5, 2.7, 0.4, 100)
    store.add_checkpoint("j1", 2, 1.5, 1.9, 0.6, 200)
    detail = store.detail("ws_a", "j1")
    assert [c.step_number for c in detail.checkpoints] == [2, 1]
    assert detail.job.trained_tokens == 200 and detail.checkpoints[0].valid_mean_token_accuracy == 0.6


def test_filters_pages_and_workspaces(store):
    store.add(job("j1", minutes=1))
    store.add(job("j2", minutes=2, model="other", suffix="x"))
    store.add(job("j3", minutes=3, status=st.SUCCESS))
    store.add(job("jb", workspace="ws_b", minutes=4))
    page = lambda **f: [j.id for j in store.page("ws_a", 0, 10, JobFilters(**f))[0]]  # noqa: E731
    assert page() == ["j3", "j2", "j1"]
    assert page(model="other") == ["j2"] and page(suffix="x") == ["j2"] and page(status=st.SUCCESS) == ["j3"]
    assert page(created_after=NOW + timedelta(minutes=1, seconds=30)) == ["j3", "j2"]
    second, total = store.page("ws_a", 1, 2, JobFilters())
    assert [j.id for j in second] == ["j1"] and total == 3
    with pytest.raises(JobNotFound):
        store.get("ws_a", "jb")
    assert [j.id for j in store.with_status(st.QUEUED)] == ["j1", "j2", "jb"]


def test_fine_tuned_models_belong_to_one_workspace(store, tmp_path):
    models = FineTunedModels(store.db, tmp_path)
    adapter = tmp_path / "adapter.gguf"
    adapter.write_bytes(b"GGUF adapter bytes")
    model_id = fine_tuned_model_id("base", "sfx", "0123abcd-0000-4000-8000-000000000000")
    assert model_id == "ft:base:sfx:0123abcd"
    models.create(model_id, "ws_a", "job", "base", adapter)
    assert models.lookup("ws_a", model_id).adapter.read_bytes() == b"GGUF adapter bytes"
    assert models.lookup("ws_b", model_id) is None and models.adapters_of("base") == [models.lookup("ws_a", model_id).adapter]
    with pytest.raises(FineTunedModelNotFound):
        models.delete("ws_b", model_id)
    models.update("ws_a", model_id, archived=True)
    assert models.adapters_of("base") == []
    kept = models.lookup("ws_a", model_id).adapter
    models.delete("ws_a", model_id)
    assert models.lookup("ws_a", model_id) is None and not kept.exists()


def test_move_refuses_what_the_table_forbids(store):
    store.add(job("j1", status=st.RUNNING))
    with pytest.raises(st.IllegalTransition):
        store.move("j1", st.CANCELLED, {st.RUNNING, st.CANCELLATION_REQUESTED})
    assert store.get("ws_a", "j1").status == st.RUNNING
    assert store.move("j1", st.CANCELLATION_REQUESTED, {st.RUNNING})
    assert store.move("j1", st.CANCELLED, {st.CANCELLATION_REQUESTED})


def _status_names(node, assignments: dict) -> set[str]:
    """Statuses (st.NAME) an expression can be: a constant, or a local variable assigned from them."""
    if isinstance(node, ast.Name):
        return set().union(*(_status_names(v, {}) for v in assignments.get(node.id, [])))
    return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "st"}


def _moves_in(path: Path) -> list[tuple[str, set[str], set[str] | None]]:
    """(where, new statuses, expected statuses or None) of every status move written in `path`."""
    moves = []
    for func in ast.walk(ast.parse(path.read_text())):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef) or func.name == "_move":
            continue  # (JobExecution._move only passes its arguments on to JobStore.move)
        assignments: dict[str, list] = {}
        for node in ast.walk(func):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assignments.setdefault(target.id, []).append(node.value)
        for call in ast.walk(func):
            if not isinstance(call, ast.Call):
                continue
            args, callee = list(call.args), call.func
            if isinstance(callee, ast.Attribute) and callee.attr == "to_thread" and args:
                callee, args = args[0], args[1:]
            name = callee.attr if isinstance(callee, ast.Attribute) else None
            if name == "move":  # JobStore.move(job_id, new, expect, data, **fields)
                new, expect = args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else None
            elif name == "_move":  # JobExecution._move(new, data, expect, **fields)
                new, expect = args[0] if args else None, args[2] if len(args) > 2 else None
            else:
                continue
            for keyword in call.keywords:
                if keyword.arg == "new":
                    new = keyword.value
                elif keyword.arg == "expect":
                    expect = keyword.value
            if new is None:  # the definition itself (def _move) is not a call
                continue
            expected = None if expect is None or (isinstance(expect, ast.Constant) and expect.value is None) \
                else _status_names(expect, assignments)
            moves.append((f"{path.name}:{call.lineno}", _status_names(new, assignments), expected))
    return moves


def test_every_status_move_in_the_code_is_allowed_by_the_table():
    package = Path(fine_tuning.__file__).parent
    moves = [m for path in sorted(package.glob("*.py")) for m in _moves_in(path)]
    assert len(moves) >= 15, moves  # the scan does see the code's moves
    for where, news, expected in moves:
        assert news, f"{where}: a move to a status the test cannot read"
        for new in news:
            assert new in st.ALLOWED.keys() | st.FINAL, where
            for current in sorted(expected if expected is not None else st.sources(getattr(st, new))):
                assert getattr(st, new) in st.ALLOWED.get(getattr(st, current), ()), \
                    f"{where}: moves a {current} job to {new}, which statuses.ALLOWED forbids"


def test_unknown_fine_tune_ids_are_remembered_briefly(store, tmp_path):
    models = FineTunedModels(store.db, tmp_path)
    queries = []
    event.listen(store.db.engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    model_id = fine_tuned_model_id("base", None, "4567abcd-0000-4000-8000-000000000000")
    assert models.lookup("ws_a", model_id) is None
    read = len(queries)
    assert read >= 1
    for _ in range(50):  # asked again and again (every request naming it): the database is not read
        assert models.lookup("ws_a", model_id) is None
    assert models.cached("ws_a", model_id) == (True, None) and len(queries) == read
    adapter = tmp_path / "adapter.gguf"
    adapter.write_bytes(b"GGUF")
    models.create(model_id, "ws_a", "job", "base", adapter)  # created here: known at once
    assert models.lookup("ws_a", model_id).model_id == model_id
    other = fine_tuned_model_id("base", None, "89abcdef-0000-4000-8000-000000000000")
    assert models.lookup("ws_a", other) is None
    time.sleep(UNKNOWN_FOR_S + 0.1)  # ids unknown here may have been made by another node since
    before = len(queries)
    assert models.lookup("ws_a", other) is None and len(queries) > before
