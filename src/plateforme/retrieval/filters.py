"""The WHERE clause every index query carries: the chunk's library among those the caller may read,
its document processed (`done`), and the document attributes the caller filters on.

Written as SQL over `document_chunks c JOIN library_documents d`, so the filters run inside the
index queries and a chunk that does not pass them is never read (nothing is filtered afterwards).

`filters` maps an attribute name to a value (the document's attribute equals it, or holds it when
the attribute is a list) or to a list of values (any of them); values are strings, numbers,
booleans or null, compared with their type (the string "1" is not the number 1).
"""

import json
import math
import re
from dataclasses import dataclass, field

from plateforme.retrieval.errors import BadFilters

MAX_FILTER_KEYS = 32
MAX_FILTER_VALUES = 100
_KEY = re.compile(r'^[^"\\\x00-\x1f]{1,200}$')
_SCALARS = (str, int, float, bool, type(None))
_INT64 = (-(2 ** 63), 2 ** 63 - 1)


@dataclass
class Where:
    sql: str
    params: dict = field(default_factory=dict)


def check_filters(filters: dict | None) -> dict[str, list]:
    """The filters with every value as a list of alternatives; BadFilters names what is wrong."""
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        raise BadFilters('expected an object of attribute names to values, e.g. {"lang": "fr"}')
    if len(filters) > MAX_FILTER_KEYS:
        raise BadFilters(f"at most {MAX_FILTER_KEYS} attributes, got {len(filters)}")
    checked: dict[str, list] = {}
    for key, value in filters.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise BadFilters(f"attribute name {key!r} must be 1 to 200 characters, without quotes, "
                             "backslashes or control characters")
        values = value if isinstance(value, list) else [value]
        if not values or len(values) > MAX_FILTER_VALUES:
            raise BadFilters(f"{key!r}: a list of 1 to {MAX_FILTER_VALUES} values")
        for v in values:
            if not isinstance(v, _SCALARS) or (isinstance(v, float) and not math.isfinite(v)):
                raise BadFilters(f"{key!r}: values are strings, numbers, booleans or null, got {v!r}")
            if isinstance(v, int) and not isinstance(v, bool) and not _INT64[0] <= v <= _INT64[1]:
                raise BadFilters(f"{key!r}: integers between -2^63 and 2^63-1, got {v}")
            if isinstance(v, str) and "\x00" in v:
                raise BadFilters(f"{key!r}: a value holds a NUL character")
        checked[key] = values
    return checked


def _sqlite_value(name: str, value) -> tuple[str, dict]:
    """A condition on one json_each row `je` (the attribute itself, or each element of a list)."""
    if value is None:
        return "je.type = 'null'", {}
    if isinstance(value, bool):
        return f"je.type = '{'true' if value else 'false'}'", {}
    if isinstance(value, (int, float)):
        return f"(je.type IN ('integer', 'real') AND je.value = :{name})", {name: value}
    return f"(je.type = 'text' AND je.value = :{name})", {name: value}


def _attribute_sql(dialect: str, filters: dict[str, list]) -> Where:
    """The document's attribute equals one of the values or, for a list attribute, holds one of them."""
    parts, params = [], {}
    for i, (key, values) in enumerate(filters.items()):
        if dialect == "sqlite":  # json_each: one row for a scalar, one per element for a list
            params[f"fp{i}"] = '$."' + key + '"'
            alternatives = []
            for j, value in enumerate(values):
                sql, extra = _sqlite_value(f"fv{i}_{j}", value)
                alternatives.append(sql)
                params.update(extra)
            parts.append(f"EXISTS (SELECT 1 FROM json_each(d.attributes, :fp{i}) je "
                         f"WHERE {' OR '.join(alternatives)})")
        else:  # PostgreSQL jsonb containment: equality for a scalar, membership for a list; typed
            params[f"fk{i}"] = key
            alternatives = []
            for j, value in enumerate(values):
                params[f"fv{i}_{j}"] = json.dumps(value)
                alternatives.append(f"(CAST(d.attributes AS jsonb) -> CAST(:fk{i} AS text)) "
                                    f"@> CAST(:fv{i}_{j} AS jsonb)")
            parts.append("(" + " OR ".join(alternatives) + ")")
    return Where(" AND ".join(parts), params)


def library_list(column: str, library_ids: list[str], prefix: str = "lib") -> Where:
    names = [f"{prefix}{i}" for i in range(len(library_ids))]
    return Where(f"{column} IN ({', '.join(':' + n for n in names)})", dict(zip(names, library_ids)))


def chunk_where(dialect: str, library_ids: list[str], filters: dict[str, list]) -> Where:
    """Conditions on `c` (document_chunks) and `d` (library_documents); library_ids is not empty."""
    libraries = library_list("c.library_id", library_ids)
    parts, params = [libraries.sql, "d.process_status = 'done'"], dict(libraries.params)
    if filters:
        attributes = _attribute_sql(dialect, filters)
        parts.append(attributes.sql)
        params.update(attributes.params)
    return Where(" AND ".join(parts), params)
