"""A small MCP server for the tests: a shop's stock, over stdio (default) or streamable HTTP.

    python tests/mcp_servers/inventory_server.py                # stdio
    python tests/mcp_servers/inventory_server.py --http PORT    # streamable HTTP on 127.0.0.1:PORT/mcp

Every tool is deterministic. `delete_item` and `restock` are the ones a test admin marks
requires_confirmation: they really change state, so a test can see whether they ran
(stock_count; the file $RESTOCK_LOG, one line per restock, readable from outside the server). `slow`,
`freeze`, `fail` and `crash` are the misbehaviours a connector must survive: a call that takes too
long, a server that hangs, a tool error, and the server process dying mid-call.
"""

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

STOCK = {"apple": 12, "pear": 5, "plum": 0}

server = MCPServer("inventory", instructions="The stock of a small fruit shop.")


@server.tool(description="How many units of an item are in stock.")
def stock_level(item: str) -> dict:
    if item not in STOCK:
        raise ToolError(f"unknown item {item!r}; known items: {', '.join(sorted(STOCK))}")
    return {"item": item, "units": STOCK[item]}


@server.tool(description="The number of distinct items in stock.")
def stock_count() -> int:
    return len(STOCK)


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Remove an item from the catalogue (irreversible).")
def delete_item(item: str) -> str:
    if STOCK.pop(item, None) is None:
        raise ToolError(f"unknown item {item!r}")
    return f"deleted {item}"


@server.tool(description="Order more stock from the supplier (costs money: needs the user's approval).")
def restock() -> str:
    """Appends a line to the file $RESTOCK_LOG, so a test sees from outside whether it ran."""
    with open(os.environ["RESTOCK_LOG"], "a") as log:
        log.write("restocked\n")
    return "restock ordered"


@server.tool(description="The value of the server's SHOP_NAME environment variable.")
def shop_name() -> str:
    return os.environ.get("SHOP_NAME", "<unset>")


@server.tool(description="Sleep for a number of seconds, then answer.")
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return f"slept {seconds}s"


@server.tool(description="Block the whole server (its event loop) for a number of seconds.")
async def freeze(seconds: float) -> str:
    time.sleep(seconds)
    return f"froze {seconds}s"


@server.tool(description="Always fails with the given reason.")
def fail(reason: str) -> str:
    raise ToolError(reason)


@server.tool(description="Kill this server process mid-call.")
def crash() -> str:
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
