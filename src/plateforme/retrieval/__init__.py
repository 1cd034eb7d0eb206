"""Retrieval over document libraries: the chunk index (dense vectors and full text, on SQLite or
PostgreSQL), reciprocal rank fusion, and the library search that combines them."""
