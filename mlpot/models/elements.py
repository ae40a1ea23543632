"""Elements of a model: config validation and the atomic-number -> element-index lookup."""

from typing import List, Sequence, Union

import torch
from ase.data import atomic_numbers as symbol_to_z
from ase.data import chemical_symbols

from mlpot.errors import MLPotError


def canonical_elements(elements: List[Union[str, int]], where: str) -> List[str]:
    """Symbols or atomic numbers -> unique symbols ordered by atomic number."""
    if not elements:
        raise MLPotError(f"'{where}' must list at least one element")
    numbers = []
    for element in elements:
        if isinstance(element, int) and 1 <= element < len(chemical_symbols):
            numbers.append(element)
        elif isinstance(element, str) and element in symbol_to_z and element != "X":
            numbers.append(symbol_to_z[element])
        else:
            raise MLPotError(f"'{where}' has {element!r}, which is not an element symbol or atomic number")
    if len(set(numbers)) != len(numbers):
        raise MLPotError(f"'{where}' lists an element twice: {elements}")
    return [chemical_symbols[z] for z in sorted(numbers)]


def species_table(numbers: Sequence[int]) -> torch.Tensor:
    """[len(chemical_symbols)] long: the model's element index of every atomic number, -1 if absent."""
    table = torch.full((len(chemical_symbols),), -1, dtype=torch.long)
    table[torch.tensor(list(numbers), dtype=torch.long)] = torch.arange(len(numbers))
    return table


def species_of(table: torch.Tensor, atomic_numbers: torch.Tensor) -> torch.Tensor:
    """Atomic numbers [N] -> model element indices [N]; unknown elements fail loudly."""
    species = table[atomic_numbers]
    if torch.compiler.is_compiling():  # no data-dependent branch in an exported graph: a run-time assert
        torch._assert_async(torch.all(species >= 0), "atomic numbers are not among the model's elements")
        return species
    if bool((species < 0).any()):
        unknown: List[int] = torch.unique(atomic_numbers[species < 0]).tolist()
        raise RuntimeError(f"atomic numbers {unknown} are not among the model's elements")
    return species
