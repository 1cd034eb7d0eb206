"""The request pipeline: what every generation passes through, whoever asks for it.

Admission, workspace limits and budgets, guards, trace capture, usage recording and metrics take
a principal and a request (never a `fastapi.Request`), so HTTP routes, batch jobs, agent loops and
evaluation runs are limited, billed and traced the same way (request_pipeline.py).
"""
