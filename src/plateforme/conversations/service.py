"""Start, append to, restart conversations: the store and the loop together, for the routes.

OWNER: engineer B (issue 14). Skeleton committed by the lead to pin the interface.
"""


class ConversationService:
    def __init__(self, store, loop, agents):
        """`store`: conversations.store.ConversationStore; `loop`: conversations.loop.ConversationLoop;
        `agents`: agents.registry.AgentRegistry."""
        self.store, self.loop, self.agents = store, loop, agents
