"""Helpers that the original ``lightning.app.utilities`` offered, under the same import paths."""
