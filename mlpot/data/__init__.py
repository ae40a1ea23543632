"""Atoms -> graphs, dataset readers, statistics and batching."""
