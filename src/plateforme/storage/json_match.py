"""An SQL condition that a JSON column's key holds a scalar value, on SQLite and PostgreSQL alike."""


def json_equals(field, value):
    """`field` (a JSON column indexed by a key, e.g. Table.meta["team"]) equals `value`, compared as
    its JSON type; None for a value that is not a string, number or boolean (the caller decides)."""
    if isinstance(value, bool):  # before int: a bool is an int to Python
        return field.as_boolean() == value
    if isinstance(value, int):
        return field.as_integer() == value
    if isinstance(value, float):
        return field.as_float() == value
    if isinstance(value, str):
        return field.as_string() == value
    return None
