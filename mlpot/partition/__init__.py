"""Systems bigger than one process: partition the atom graph, evaluate the parts with exact
halos, in one process (memory bounded by the largest part) or across torch.distributed ranks."""

from mlpot.partition.evaluate import PartitionedPotential, evaluate_partitioned
from mlpot.partition.halo import part_halos
from mlpot.partition.partitioners import METHODS, partition_atoms, partition_quality

__all__ = ["METHODS", "PartitionedPotential", "evaluate_partitioned", "part_halos", "partition_atoms", "partition_quality"]
