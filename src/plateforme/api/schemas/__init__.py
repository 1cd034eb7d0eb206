"""Wire schemas, field for field as in Mistral's OpenAPI spec."""
