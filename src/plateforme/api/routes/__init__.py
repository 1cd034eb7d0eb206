"""HTTP routes; each module is one resource."""
