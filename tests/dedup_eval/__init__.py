"""Labelled evaluation set for deduplication (see README.md)."""
