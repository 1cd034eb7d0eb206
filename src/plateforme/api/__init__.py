"""HTTP API: FastAPI routes and pydantic schemas following Mistral's public API."""
