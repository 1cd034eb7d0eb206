"""Model registry: which models exist, where their weights are, how they are served."""
