"""Errors of the traces capability, mapped to HTTP statuses by the API layer."""


class TraceError(Exception):
    status = 400


class TraceNotFound(TraceError):
    status = 404


class NothingToExport(TraceError):
    status = 400
