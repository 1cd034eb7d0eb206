"""Errors of account operations, mapped to HTTP statuses by the API layer."""


class AccountError(Exception):
    status = 400


class NotFound(AccountError):
    status = 404


class Conflict(AccountError):
    status = 409
