"""Document libraries: libraries and their sharing, documents, and their ingestion (parse, chunk,
embed, index) in the background."""
