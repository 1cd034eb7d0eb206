"""The agent registry over a real database (SQLite file, and PostgreSQL for the queries whose
behaviour differs: JSON bodies, timestamp order), without a server: versions, aliases, workspace
isolation, list filters and cursor pages, the definition checks. The live routes are in
tests/test_agents_api.py."""

import uuid

import pytest

from plateforme.agents.errors import BadInput, NotFound
from plateforme.agents.listing import AgentFilters
from plateforme.agents.registry import AgentRegistry
from plateforme.storage.database import open_database
from plateforme.tenancy.accounts import Accounts

BODY = {"model": "m", "name": "helper", "instructions": "be brief", "tools": [], "completion_args": {}}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database(request, tmp_path_factory):
    """One migrated database per kind for the module (migrations are most of the cost)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('agents') / 'p.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"t_{uuid.uuid4().hex[:12]}")
    db = open_database(url)
    yield db
    db.dispose()


@pytest.fixture
def registry(database):
    """The registry and two fresh workspaces of its own."""
    accounts = Accounts(database)
    a, b = (accounts.create_workspace(f"{name}-{uuid.uuid4().hex[:6]}").id for name in "ab")
    return AgentRegistry(database), a, b


def test_versions_aliases_and_isolation(registry):
    agents, a, b = registry
    made = agents.create(a, {**BODY, "version_message": "v0"})
    assert (made.version, made.versions, made.current_version) == (0, [0], 0)
    one = agents.update(a, made.id, {"instructions": "be kind"})
    assert (one.version, one.versions, one.body["instructions"], one.body["version_message"]) == \
        (1, [0, 1], "be kind", None)
    assert agents.update(a, made.id, {"instructions": "be kind"}).version == 1  # nothing changed
    assert agents.switch_version(a, made.id, 0).body["instructions"] == "be brief"
    two = agents.update(a, made.id, {"name": None, "description": "d"})  # a null name is left as it was
    assert (two.version, two.name, two.body["instructions"]) == (2, "helper", "be brief")
    agents.set_alias(a, made.id, "prod", 1)
    assert agents.get(a, made.id, "prod").body["instructions"] == "be kind"
    assert agents.get(a, made.id, "1").version == 1 and agents.get(a, made.id).version == 2
    assert agents.set_alias(a, made.id, "prod", 2).version == 2
    assert [r.alias for r in agents.aliases(a, made.id)] == ["prod"]
    assert [r.version for r in agents.versions(a, made.id, page=0, page_size=2)] == [2, 1]
    for call in (lambda: agents.get(a, made.id, 9), lambda: agents.get(a, made.id, "nope"),
                 lambda: agents.switch_version(a, made.id, 9), lambda: agents.set_alias(a, made.id, "x", 9),
                 lambda: agents.delete_alias(a, made.id, "x")):
        with pytest.raises(NotFound):
            call()
    # Workspace b: the agent does not exist, whatever the call.
    for call in (lambda: agents.get(b, made.id), lambda: agents.update(b, made.id, {"name": "x"}),
                 lambda: agents.delete(b, made.id), lambda: agents.versions(b, made.id),
                 lambda: agents.aliases(b, made.id), lambda: agents.set_alias(b, made.id, "x", 0)):
        with pytest.raises(NotFound):
            call()
    assert agents.list(b, AgentFilters()) == []
    with pytest.raises(BadInput) as refused:
        agents.create(b, {**BODY, "handoffs": [made.id]})
    assert refused.value.param == "handoffs"
    agents.delete(a, made.id)
    with pytest.raises(NotFound):
        agents.get(a, made.id)


def test_list_filters_and_pages_walk_every_agent_once(registry):
    agents, a, _ = registry
    made = [agents.create(a, {**BODY, "name": f"n{i}", "metadata": {"k": i % 2}}) for i in range(7)]
    newest_first = [m.id for m in reversed(made)]
    assert [r.id for r in agents.list(a, AgentFilters())] == newest_first
    assert [r.id for r in agents.list(a, AgentFilters(metadata={"k": 1}))] == newest_first[1::2]
    assert [r.id for r in agents.list(a, AgentFilters(metadata={"k": 1}), page=1, page_size=2)] == newest_first[5:6]
    assert [r.name for r in agents.list(a, AgentFilters(search="N3"))] == ["n3"]
    seen, token = [], None
    while True:
        page, token = agents.page(a, AgentFilters(), page_size=3, page_token=token)
        seen += [r.id for r in page]
        if token is None:
            break
    assert seen == newest_first
    with pytest.raises(BadInput):
        agents.page(a, AgentFilters(), page_token="garbage")


CANNOT_RUN = [
    ({"tools": [{"type": "image_generation"}]}, "tools.0.type"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}] * 2}, "tools.1.function.name"),
    ({"guardrails": [{"moderation_llm_v1": {"custom_category_thresholds": {"nope": 0.5}}}]}, "guardrails"),
    ({"handoffs": ["ag_missing"]}, "handoffs"),
]


def test_definitions_the_server_cannot_run_are_refused(registry):
    agents, a, _ = registry
    made = agents.create(a, BODY)
    for change, param in CANNOT_RUN:
        with pytest.raises(BadInput) as refused:
            agents.create(a, {**BODY, **change})
        assert refused.value.param.startswith(param), (change, refused.value.param)
        with pytest.raises(BadInput):
            agents.update(a, made.id, change)
    assert agents.get(a, made.id).versions == [0]
    assert [r.id for r in agents.list(a, AgentFilters())] == [made.id]  # nothing else written
