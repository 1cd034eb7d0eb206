"""One response of a conversation: the model, the tools it calls, handoffs, in a bounded loop.

OWNER: engineer C (issue 14). Skeleton committed by the lead to pin the interface.
"""

from plateforme.conversations.limits import LoopLimits


class ConversationLoop:
    def __init__(self, pipeline, resolver, agents, limits: LoopLimits):
        """`pipeline`: pipeline.request_pipeline.RequestPipeline; `resolver`:
        agent_tools.toolset.ToolsetResolver; `agents`: agents.registry.AgentRegistry."""
        self.pipeline, self.resolver, self.agents, self.limits = pipeline, resolver, agents, limits
