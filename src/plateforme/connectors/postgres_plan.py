"""What a PostgreSQL plan reads: the tables (relations) and columns of EXPLAIN (VERBOSE, FORMAT JSON).

The connector checks the planner's account of a statement rather than its text: the planner has
already expanded views, subqueries and common table expressions into the relations they scan,
with the columns each node reads (in a verbose plan every column is named, by its scan's alias
when the plan has several relations).
"""

import re

# Nodes that pass their child's rows on without computing anything of their own.
_PASS_THROUGH = {"Hash", "Materialize", "Sort", "Incremental Sort", "Limit", "Gather", "Gather Merge", "Unique",
                 "Append", "Merge Append", "SetOp", "LockRows", "Memoize"}
# Keys of a node that are not expressions over columns.
_NOT_EXPRESSIONS = {"Node Type", "Relation Name", "Schema", "Alias", "Index Name", "Plans", "Parent Relationship",
                    "Subplan Name", "CTE Name", "Function Name", "Strategy", "Partial Mode", "Operation",
                    "Join Type", "Scan Direction", "Command", "Sort Method", "Sort Space Type", "Inner Unique",
                    "Parallel Aware", "Async Capable", "Startup Cost", "Total Cost", "Plan Rows", "Plan Width",
                    "Single Copy", "Workers Planned", "Conflict Resolution", "Conflict Arbiter Indexes"}
_STRING = re.compile(r"'(?:[^']|'')*'")
_TOKEN = re.compile(r'((?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\.)?("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*|\*)'
                    r"(\s*\()?")
# Built-in functions that read tables or files of their own, out of the plan's sight.
_OPAQUE = re.compile(r"\b(?:(?:query|table|cursor|schema|database)_to_xml\w*|dblink\w*|pg_read_(?:binary_)?file"
                     r"|lo_(?:get|export|import|open|read)|loread|pg_ls_\w+|pg_stat_file)\s*\(", re.IGNORECASE)


def nodes(plan: dict, parent: dict | None = None):
    """(node, its parent node or None) for every node of the plan."""
    yield plan, parent
    for child in plan.get("Plans") or ():
        yield from nodes(child, plan)


def relations(plan: dict) -> list[tuple[dict, dict | None]]:
    """The plan's nodes that scan or change a relation (each has Schema, Relation Name, Alias),
    with their parents."""
    return [(n, p) for n, p in nodes(plan) if "Relation Name" in n]


def _tokens(node: dict, keys):
    for key in keys:
        value = node.get(key)
        for text in value if isinstance(value, list) else [value] if value else []:
            if not isinstance(text, str):
                continue
            for prefix, name, call in _TOKEN.findall(_STRING.sub("''", text)):
                if not call:  # not a function's name
                    yield (prefix[:-1] if prefix else None), name


def _unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier.lower()


def _physical(node: dict, table_columns: dict) -> bool:
    """A relation scan that outputs all its table's columns in order: no projection of its own."""
    columns = table_columns.get(node.get("Alias"))
    output = [_unquote(name) for _, name in _tokens(node, ("Output",))]
    return bool(columns) and output == [c.lower() for c in columns] and len(node.get("Output") or ()) == len(columns)


def columns_read(plan: dict, table_columns: dict[str, list[str]]) -> dict[str, set[str]]:
    """{alias of a relation scan: the columns of it that the plan reads ("*": the whole row)}.

    `table_columns`: each scan alias's table columns, in order. What is read: every expression
    of every node (conditions, keys, computed outputs), and the output of whatever reaches a
    result (the plan's root, a subplan's, a subquery's, through nodes that only pass rows on:
    Sort, Hash, Limit, Append...). A scan without a projection of its own (PostgreSQL's physical
    target list, e.g. under count(*) or a hash join) passes all its columns up: they count only
    where they reach a result or an expression names them."""
    tokens: set[tuple[str | None, str]] = set()

    def walk(node: dict, exposed: bool) -> None:
        kind = node.get("Node Type")
        scan = "Relation Name" in node
        counts = exposed or not (kind in _PASS_THROUGH or (scan and _physical(node, table_columns)))
        keys = [k for k in node if k not in _NOT_EXPRESSIONS and (k != "Output" or counts)]
        tokens.update(_tokens(node, keys))
        for child in node.get("Plans") or ():
            root = child.get("Parent Relationship") in ("InitPlan", "SubPlan", "Subquery")
            walk(child, root or (exposed and kind in _PASS_THROUGH))

    walk(plan, True)
    def of(alias: str, prefix: str | None, name: str) -> bool:
        if prefix is None:  # a bare "*" is count(*)'s; a whole row is always written alias.* in a verbose plan
            return name != "*"
        return prefix == alias or _unquote(prefix) == alias

    return {alias: {name if name == "*" else _unquote(name) for prefix, name in tokens if of(alias, prefix, name)}
            for alias in table_columns}


def opaque_functions(plan: dict) -> list[str]:
    """Names of functions in the plan that read what the plan does not show."""
    out = []
    for node, _ in nodes(plan):
        for value in node.values():
            for text in value if isinstance(value, list) else [value]:
                if isinstance(text, str):
                    out += [m.group(0).rstrip("( ") for m in _OPAQUE.finditer(_STRING.sub("''", text))]
    return out
