"""Workspaces, users, API keys and the audit log: who may do what, and the record of it."""
