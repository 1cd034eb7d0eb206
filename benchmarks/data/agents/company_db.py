"""The shipped company database: customers, products, orders, order_items (and employees, a
table a connector should NOT list: it holds salaries), as one SQL script for SQLite and PostgreSQL.

    python benchmarks/data/agents/company_db.py            # (re)write company.sql (deterministic)
    python benchmarks/data/agents/company_db.py out.db     # also build an SQLite file from it

From Python (tests, benchmarks/bench_agents.py):

    sys.path.insert(0, "benchmarks/data/agents"); import company_db
    company_db.build_sqlite(path)        # an SQLite file loaded from company.sql
    company_db.load_postgres(url)        # the same tables in a PostgreSQL database (psycopg)

company.sql is committed; its rows are drawn from a seeded random generator, so re-running this
script leaves it byte-for-byte unchanged. The SQL is portable: INTEGER, TEXT and DATE columns
(money in whole euros, so sums are exact on both databases; dates ISO 'YYYY-MM-DD', compared as
such on both), multi-row INSERTs, DROP TABLE IF EXISTS first so a reload starts clean.
"""

import random
import sqlite3
import sys
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).parent
SQL_PATH = HERE / "company.sql"
SEED = 14

TABLES = ("customers", "products", "orders", "order_items", "employees")

SCHEMA = """\
CREATE TABLE customers (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    city TEXT NOT NULL,
    country TEXT NOT NULL,
    segment TEXT NOT NULL,          -- 'enterprise' | 'smb' | 'public'
    created_on DATE NOT NULL
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    unit_price INTEGER NOT NULL,    -- whole euros
    in_stock INTEGER NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id),
    order_date DATE NOT NULL,
    status TEXT NOT NULL            -- 'delivered' | 'shipped' | 'pending' | 'cancelled'
);
CREATE TABLE order_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL REFERENCES orders (id),
    product_id INTEGER NOT NULL REFERENCES products (id),
    quantity INTEGER NOT NULL,
    unit_price INTEGER NOT NULL     -- whole euros, the price when ordered
);
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    department TEXT NOT NULL,
    salary INTEGER NOT NULL         -- yearly, euros: confidential, never listed for an agent
);
"""

FIRST = ["Camille", "Lucas", "Emma", "Hugo", "Léa", "Louis", "Chloé", "Nathan", "Manon", "Jules",
         "Sofia", "Lars", "Anna", "Marco", "Elena", "Tomás", "Ingrid", "Pieter", "Zoé", "Yann"]
LAST = ["Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Rossi", "García", "Jansen", "Novak",
        "Schmidt", "Lindqvist", "Costa", "Fournier", "Girard", "Bonnet"]
COMPANY = ["Atelier", "Groupe", "Solutions", "Industries", "Conseil", "Logistique", "Santé", "Énergie"]
PLACES = [("Paris", "France"), ("Lyon", "France"), ("Marseille", "France"), ("Toulouse", "France"),
          ("Nantes", "France"), ("Lille", "France"), ("Bruxelles", "Belgium"), ("Liège", "Belgium"),
          ("Genève", "Switzerland"), ("Lausanne", "Switzerland"), ("Berlin", "Germany"),
          ("München", "Germany"), ("Madrid", "Spain"), ("Milano", "Italy"), ("Amsterdam", "Netherlands")]
SEGMENTS = ["enterprise", "smb", "smb", "public"]
PRODUCTS = [  # name, category, unit price (euros)
    ("Beacon S2 sensor", "hardware", 149), ("Beacon S2 gateway", "hardware", 389),
    ("Beacon mount kit", "hardware", 25), ("Solar panel 20W", "hardware", 119),
    ("Battery pack", "hardware", 59), ("Field tablet", "hardware", 649),
    ("Rugged router", "hardware", 429), ("Temperature probe", "hardware", 39),
    ("Humidity probe", "hardware", 45), ("Cable set", "hardware", 19),
    ("Fleet dashboard (yearly)", "software", 1200), ("Analytics add-on (yearly)", "software", 800),
    ("Alerting add-on (yearly)", "software", 300), ("API access (yearly)", "software", 500),
    ("Mobile app seats x10", "software", 450), ("Data export module", "software", 250),
    ("Installation day", "services", 900), ("Training session", "services", 700),
    ("Support gold (yearly)", "services", 1500), ("Support silver (yearly)", "services", 800),
    ("Site survey", "services", 600), ("Calibration visit", "services", 350),
    ("Custom integration", "services", 4000), ("Extended warranty", "services", 120),
]
STATUSES = ["delivered"] * 6 + ["shipped"] * 2 + ["pending", "cancelled"]
DEPARTMENTS = ["sales", "engineering", "support", "finance", "operations"]

N_CUSTOMERS, N_ORDERS, N_EMPLOYEES = 60, 220, 24
START = date(2025, 1, 1)


def _q(value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, date):
        return f"'{value.isoformat()}'"
    return str(value)


def _insert(table: str, columns: tuple[str, ...], rows: list[tuple]) -> str:
    values = ",\n".join("(" + ", ".join(_q(v) for v in row) + ")" for row in rows)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES\n{values};\n"


def _ascii(text: str) -> str:
    table = str.maketrans("éèêëàâäîïôöùûüçñóáíú", "eeeeaaaiioouuucnoaiu")
    return text.lower().translate(table)


def rows() -> dict[str, tuple[tuple[str, ...], list[tuple]]]:
    """Every table's columns and rows, drawn from the seeded generator."""
    rnd = random.Random(SEED)
    customers = []
    for i in range(1, N_CUSTOMERS + 1):
        last = rnd.choice(LAST)
        name = f"{rnd.choice(COMPANY)} {last}" if rnd.random() < 0.7 else f"{rnd.choice(FIRST)} {last}"
        name = f"{name} {i}"  # unique, and says which row it is
        city, country = rnd.choice(PLACES)
        email = f"contact{i}@{_ascii(last)}.example"
        customers.append((i, name, email, city, country, rnd.choice(SEGMENTS),
                          START - timedelta(days=rnd.randrange(30, 900))))
    products = [(i, name, category, price, rnd.randrange(0, 400) if category == "hardware" else 0)
                for i, (name, category, price) in enumerate(PRODUCTS, start=1)]
    orders, items = [], []
    for i in range(1, N_ORDERS + 1):
        orders.append((i, rnd.randrange(1, N_CUSTOMERS + 1), START + timedelta(days=rnd.randrange(0, 365)),
                       rnd.choice(STATUSES)))
        for product in rnd.sample(products, rnd.randrange(1, 4)):
            items.append((len(items) + 1, i, product[0], rnd.randrange(1, 11), product[3]))
    employees = [(i, f"{rnd.choice(FIRST)} {rnd.choice(LAST)}", rnd.choice(DEPARTMENTS),
                  rnd.randrange(38, 120) * 1000) for i in range(1, N_EMPLOYEES + 1)]
    return {
        "customers": (("id", "name", "email", "city", "country", "segment", "created_on"), customers),
        "products": (("id", "name", "category", "unit_price", "in_stock"), products),
        "orders": (("id", "customer_id", "order_date", "status"), sorted(orders)),
        "order_items": (("id", "order_id", "product_id", "quantity", "unit_price"), items),
        "employees": (("id", "name", "department", "salary"), employees),
    }


def script() -> str:
    """The whole company.sql text."""
    parts = ["-- The shipped company database (benchmarks/data/agents/company_db.py writes it; do not edit).\n",
             "".join(f"DROP TABLE IF EXISTS {t};\n" for t in reversed(TABLES)), SCHEMA]
    parts += [_insert(table, columns, data) for table, (columns, data) in rows().items()]
    return "\n".join(parts)


def write_sql(path: Path = SQL_PATH) -> Path:
    path.write_text(script(), encoding="utf-8")
    return path


def build_sqlite(path: str | Path) -> Path:
    """An SQLite file at `path` holding company.sql (replacing its tables if they exist)."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(SQL_PATH.read_text(encoding="utf-8"))
        conn.commit()
    finally:
        conn.close()
    return Path(path)


def load_postgres(url: str) -> None:
    """company.sql executed in the PostgreSQL database at `url` (psycopg; one transaction)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(SQL_PATH.read_text(encoding="utf-8"))


if __name__ == "__main__":
    print(write_sql())
    if len(sys.argv) > 1:
        print(build_sqlite(sys.argv[1]))
