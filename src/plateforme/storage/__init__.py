"""Persistent state: the relational database (SQLAlchemy) and blob storage."""
