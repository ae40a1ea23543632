"""Write the starting structures of the scattering example into DIR (default: out/).

cu3au-cell.xyz: the 4-atom L1_2 Cu3Au cubic cell (for mlpot phonons);
cu3au-crystal.xyz: its 4 x 4 x 4 repeat, 256 atoms (for mlpot md).
"""

import sys
from pathlib import Path

from ase.build import bulk
from ase.io import write

directory = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
directory.mkdir(parents=True, exist_ok=True)
cell = bulk("Cu", "fcc", a=3.70, cubic=True)
cell.symbols[0] = "Au"  # L1_2: Au on the cube corners, Cu on the face centres
write(directory / "cu3au-cell.xyz", cell)
write(directory / "cu3au-crystal.xyz", cell.repeat(4))
print(f"wrote {directory}/cu3au-cell.xyz and {directory}/cu3au-crystal.xyz")
