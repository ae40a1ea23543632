"""Electronic-structure data for Hamiltonian models: AO conventions, PySCF runs, datasets."""
