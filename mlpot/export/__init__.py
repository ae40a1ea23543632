"""Exports of trained models for other MD engines (TorchScript for LAMMPS)."""
