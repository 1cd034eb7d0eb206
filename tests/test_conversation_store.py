"""ConversationStore on a real database (SQLite and PostgreSQL): entries in
order, one response at a time (begin/renew/end, 409), restart copies up to an entry, isolation of
workspaces, interrupted responses marked failed."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from plateforme.agents.errors import BadInput, Conflict, NotFound
from plateforme.conversations.store import INTERRUPTED, ConversationStore
from plateforme.storage.conversation_tables import Conversation
from plateforme.storage.database import open_database
from plateforme.tenancy.accounts import Accounts
from plateforme.tenancy.ids import utcnow


@pytest.fixture
def stores(database_url):
    db = open_database(database_url)  # SQLite, then PostgreSQL (conftest)
    accounts = Accounts(db)
    a, b = accounts.create_workspace("a").id, accounts.create_workspace("b").id
    yield ConversationStore(db, "runner-1"), ConversationStore(db, "runner-2"), a, b
    db.dispose()


def new_entry(entry_type: str, **fields) -> dict:
    return {"object": "entry", "type": entry_type, "id": f"msg_{uuid.uuid4().hex}", **fields}


def _message(text: str) -> dict:
    return new_entry("message.input", role="user", content=text, prefix=False)


def test_entries_are_kept_in_order_and_per_workspace(stores):
    store, _, a, b = stores
    first, second, third = _message("one"), _message("two"), _message("three")
    made = store.create(a, "conv_1", {"model": "m", "instructions": "be brief", "metadata": {"team": "x"},
                                      "description": "d"}, [first])
    assert made.status == "running" and made.description == "d" and made.metadata == {"team": "x"}
    store.append("conv_1", [second, third])
    assert [e["content"] for e in store.entries(a, "conv_1")] == ["one", "two", "three"]
    for call in (lambda: store.get(b, "conv_1"), lambda: store.entries(b, "conv_1"),
                 lambda: store.delete(b, "conv_1"), lambda: store.begin(b, "conv_1")):
        with pytest.raises(NotFound) as err:
            call()
        assert err.value.param == "conversation_id"
    assert store.list(b) == []
    with pytest.raises(ValueError):
        store.create(a, "conv_2", {"colour": "red"})


def test_one_response_at_a_time(stores):
    store, other, a, _ = stores
    store.create(a, "conv_1", {"model": "m"}, [_message("hi")])
    with pytest.raises(Conflict):
        store.begin(a, "conv_1")
    with pytest.raises(Conflict):
        store.delete(a, "conv_1")
    assert store.renew("conv_1") and not other.renew("conv_1")
    other.end("conv_1", "idle")  # not its response: nothing changes
    assert store.get(a, "conv_1").status == "running"
    store.end("conv_1", "waiting")
    assert store.get(a, "conv_1").status == "waiting"
    record, before = store.begin(a, "conv_1")
    assert record.status == "running" and before == ("waiting", None)
    store.end("conv_1", "failed", "the engine stopped", active_agent_id="ag_2")
    failed = store.get(a, "conv_1")
    assert (failed.status, failed.error, failed.active_agent_id) == ("failed", "the engine stopped", "ag_2")
    record, before = store.begin(a, "conv_1")  # a failed conversation takes a new append
    assert record.error is None and before == ("failed", "the engine stopped")
    # Another runner takes over a response whose lease ran out.
    with store.db.session() as s:
        s.execute(update(Conversation).values(lease_until=utcnow() - timedelta(seconds=1)))
        s.commit()
    assert other.begin(a, "conv_1")[1] == ("failed", INTERRUPTED)
    with pytest.raises(ValueError):
        other.end("conv_1", "running")
    other.end("conv_1", "idle")
    store.delete(a, "conv_1")
    with pytest.raises(NotFound):
        store.get(a, "conv_1")


def test_restart_copies_the_entries_up_to_the_one_named(stores):
    store, _, a, b = stores
    entries = [_message("one"), new_entry("message.output", content="un", role="assistant"), _message("two")]
    store.create(a, "conv_1", {"model": "m", "name": "first"}, entries, running=False)
    store.create(b, "conv_b", {"model": "m"}, [_message("elsewhere")], running=False)
    source, kept = store.entries_through(a, "conv_1", entries[1]["id"])
    assert (source.id, source.name) == ("conv_1", "first")
    assert [e["content"] for e in kept] == ["one", "un"]
    assert not {e["id"] for e in kept} & {e["id"] for e in entries}  # copies have ids of their own
    made = store.create(a, "conv_2", {"model": "m", "metadata": {"k": 1}}, kept)
    assert (made.id, made.metadata, made.status) == ("conv_2", {"k": 1}, "running")
    assert [e["id"] for e in store.entries(a, "conv_2")] == [e["id"] for e in kept]
    assert len(store.entries(a, "conv_1")) == 3
    foreign = store.entries(b, "conv_b")[0]["id"]
    with pytest.raises(BadInput) as err:
        store.entries_through(a, "conv_1", foreign)
    assert err.value.param == "from_entry_id"
    with pytest.raises(NotFound):
        store.entries_through(b, "conv_1", entries[0]["id"])


def test_interrupted_responses_are_marked_failed(stores):
    store, other, a, _ = stores
    store.create(a, "conv_mine", {"model": "m"})
    other.create(a, "conv_live", {"model": "m"})  # another runner, its lease alive
    other.create(a, "conv_lapsed", {"model": "m"})
    with store.db.session() as s:
        s.execute(update(Conversation).where(Conversation.id == "conv_lapsed")
                  .values(lease_until=utcnow() - timedelta(seconds=1)))
        s.commit()
    store.create(a, "conv_idle", {"model": "m"}, running=False)
    assert store.fail_interrupted() == 2
    status = {c.id: (c.status, c.error) for c in store.list(a)}
    assert status == {"conv_mine": ("failed", INTERRUPTED), "conv_lapsed": ("failed", INTERRUPTED),
                      "conv_live": ("running", None), "conv_idle": ("idle", None)}


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_list_pages_and_metadata_filter(request, tmp_path, kind):
    url = (f"sqlite:///{tmp_path / 'p.db'}" if kind == "sqlite"
           else request.getfixturevalue("postgres").create_database(f"t_conv_{tmp_path.name[-8:]}"))
    db = open_database(url)
    try:
        ws = Accounts(db).create_workspace("a").id
        store = ConversationStore(db, "r")
        metas = [{"team": "sales", "n": 1, "vip": True}, {"team": "sales", "n": 2, "tags": ["a"]},
                 {"team": "ops", "n": 3}, None]
        for i, meta in enumerate(metas):
            store.create(ws, f"conv_{i}", {"model": "m", "metadata": meta}, running=False)
        assert [c.id for c in store.list(ws)] == ["conv_3", "conv_2", "conv_1", "conv_0"]  # newest first
        assert [c.id for c in store.list(ws, page=1, page_size=3)] == ["conv_0"]
        assert [c.id for c in store.list(ws, metadata={"team": "sales"})] == ["conv_1", "conv_0"]
        assert [c.id for c in store.list(ws, metadata={"team": "sales", "n": 2})] == ["conv_1"]
        assert [c.id for c in store.list(ws, metadata={"vip": True})] == ["conv_0"]
        assert [c.id for c in store.list(ws, metadata={"tags": ["a"]})] == ["conv_1"]
        assert [c.id for c in store.list(ws, metadata={"tags": ["a"]}, page=1, page_size=1)] == []
        assert store.list(ws, metadata={"team": "nobody"}) == []
        for bad in ({"page": -1}, {"page_size": 0}, {"metadata": ["team"]}):
            with pytest.raises(BadInput):
                store.list(ws, **bad)
    finally:
        db.dispose()
