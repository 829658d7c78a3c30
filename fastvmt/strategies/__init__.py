"""Built-in strategies and their components (extractors, losses, gradient schedulers)."""
