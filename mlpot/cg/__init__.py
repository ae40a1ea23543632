"""Coarse-graining: atom -> bead mappings, molecular trajectories, backmapping metrics, MD data."""
