"""Names of every field that flows between data, models, losses, calculators and export.

Models take and return ``Dict[str, Tensor]`` with these keys, so one forward serves training,
the ASE calculator and the TorchScript export. Shapes use N atoms, E edges, B graphs.
"""

from typing import Final

# Geometry and graph (inputs).
POSITIONS: Final[str] = "positions"  # [N, 3] Å
ATOMIC_NUMBERS: Final[str] = "atomic_numbers"  # [N] int64
EDGE_INDEX: Final[str] = "edge_index"  # [2, E] int64, row 0 sender j, row 1 receiver i
SHIFTS: Final[str] = "shifts"  # [E, 3] Å, edge vector = pos[sender] - pos[receiver] + shift
CELL: Final[str] = "cell"  # [B, 3, 3] Å, rows are lattice vectors (zeros without a cell)
PBC: Final[str] = "pbc"  # [B, 3] bool
BATCH: Final[str] = "batch"  # [N] graph index of each atom
PTR: Final[str] = "ptr"  # [B + 1] first atom of each graph

# Labels and model outputs.
ENERGY: Final[str] = "energy"  # [B] eV
NODE_ENERGY: Final[str] = "node_energy"  # [N] eV
FORCES: Final[str] = "forces"  # [N, 3] eV/Å
STRESS: Final[str] = "stress"  # [B, 3, 3] eV/Å^3, ASE sign convention
VIRIAL: Final[str] = "virial"  # [B, 3, 3] eV, virial = -dE/d(strain) = -stress * volume

# Per-graph weights and label masks (1.0 where the frame carries that label, else 0.0).
WEIGHT: Final[str] = "weight"  # [B]
ENERGY_MASK: Final[str] = "energy_mask"  # [B]
FORCES_MASK: Final[str] = "forces_mask"  # [B]
STRESS_MASK: Final[str] = "stress_mask"  # [B]

# Non-tensor per-graph metadata carried by the dataset.
CONFIG_TYPE: Final[str] = "config_type"

# Backmapping (coarse-grained -> all-atom); M = beads of all frames, L = latent size.
CG_POSITIONS: Final[str] = "cg_positions"  # [M, 3] Å, bead positions
CG_EDGE_INDEX: Final[str] = "cg_edge_index"  # [2, E_cg] int64 between beads, row 0 sender
BACKMAPPED_POSITIONS: Final[str] = "backmapped_positions"  # [N, 3] Å, decoded atom positions
LATENT: Final[str] = "latent"  # [M, L] the latent the decoder used
LATENT_MEAN: Final[str] = "latent_mean"  # [M, L] encoder posterior q(z | atoms, CG)
LATENT_LOGVAR: Final[str] = "latent_logvar"  # [M, L]
PRIOR_MEAN: Final[str] = "prior_mean"  # [M, L] prior p(z | CG)
PRIOR_LOGVAR: Final[str] = "prior_logvar"  # [M, L]

# Hamiltonians in an atomic-orbital basis (Eh, PySCF's AO order); O = most AOs of any element.
# Diagonal blocks per atom; edge block e is H[AOs of receiver i, AOs of sender j].
HAMILTONIAN_NODE_BLOCKS: Final[str] = "hamiltonian_node_blocks"  # [N, O, O] Eh
HAMILTONIAN_EDGE_BLOCKS: Final[str] = "hamiltonian_edge_blocks"  # [E, O, O] Eh
OVERLAP_NODE_BLOCKS: Final[str] = "overlap_node_blocks"  # [N, O, O]
OVERLAP_EDGE_BLOCKS: Final[str] = "overlap_edge_blocks"  # [E, O, O]
ORBITAL_MASK: Final[str] = "orbital_mask"  # [N, O] 1.0 on each atom's real orbitals, 0.0 on padding

PER_GRAPH_LABELS: Final = (ENERGY, STRESS, VIRIAL)
PER_NODE_LABELS: Final = (FORCES,)
