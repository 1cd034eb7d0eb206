"""The values an integer column can hold, read from its SQL type, to bound what requests may send.

SQLite stores any integer up to 64 bits; PostgreSQL's INTEGER holds 32. A schema bounded by the
column's declared type therefore refuses the same values on both.
"""

from sqlalchemy import BigInteger, Integer, SmallInteger
from sqlalchemy.types import TypeEngine

_BITS = ((SmallInteger, 16), (BigInteger, 64), (Integer, 32))  # subclasses of Integer before Integer


def _bits(sql_type: TypeEngine) -> int:
    for kind, bits in _BITS:
        if isinstance(sql_type, kind):
            return bits
    raise TypeError(f"{sql_type!r} is not an integer type")


def int_range(column) -> tuple[int, int]:
    """(lowest, highest) value of an integer column (a mapped attribute or a Column); the narrowest
    of its dialect variants."""
    sql_type = column.type
    bits = min(_bits(t) for t in (sql_type, *getattr(sql_type, "_variant_mapping", {}).values()))
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def int_max(column) -> int:
    return int_range(column)[1]
