"""Write the LAMMPS data file for in.nvt from the shipped example structure:

    python make_data.py     ->  cuau-fcc-256.data (atom types 1 = Cu, 2 = Au, masses included)
"""

from pathlib import Path

from ase.io import read, write

HERE = Path(__file__).resolve().parent


def main() -> None:
    atoms = read(HERE.parent / "structures" / "cuau-fcc-256.xyz")
    # specorder fixes the type numbering so that `pair_coeff * * M.pt Cu Au` matches it
    write(HERE / "cuau-fcc-256.data", atoms, format="lammps-data", specorder=["Cu", "Au"], masses=True, units="metal")
    print(f"wrote {HERE / 'cuau-fcc-256.data'}: {len(atoms)} atoms, types 1 = Cu, 2 = Au")


if __name__ == "__main__":
    main()
