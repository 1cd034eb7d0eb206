"""The rate limiter forgets keys and workspaces whose window has emptied (memory stays bounded)."""

import time

import pytest

from plateforme.storage.tables import Workspace
from plateforme.tenancy.principal import Principal
from plateforme.usage.limits import Limiter, RateLimited

WINDOW_S = 0.3  # real time, one short window


def test_empty_windows_are_evicted_and_limits_still_hold():
    limiter = Limiter(lambda workspace_id, since: 0, window_s=WINDOW_S)
    workspace = Workspace(id="ws_1", name="w", requests_per_minute=None, tokens_per_minute=None,
                          token_budget=None, budget_period="month")
    for i in range(500):  # many keys, each used once
        who = Principal(workspace_id="ws_1", key_id=f"key_{i}", user_id=None, role="member")
        limiter.check(who, workspace)
        limiter.add_tokens(who, 10)
    assert limiter.tracked() >= 1000
    time.sleep(WINDOW_S + 0.05)
    steady = Principal(workspace_id="ws_1", key_id="key_steady", user_id=None, role="member",
                       requests_per_minute=2)
    limiter.check(steady, workspace)
    assert limiter.tracked() <= 4  # the workspace's and one key's windows, for requests and tokens
    limiter.check(steady, workspace)
    with pytest.raises(RateLimited):
        limiter.check(steady, workspace)  # eviction never forgets a window that still counts
