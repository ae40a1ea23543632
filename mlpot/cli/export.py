"""Export a trained potential for another MD engine.

  mlpot export --model M.model --format lammps -o M-lammps.pt [--dtype float32] [--kernel reference] [--without-dispersion]
  mlpot export --model M.model --format metatomic -o M-metatomic.pt [--dtype float32] [--without-dispersion]
  mlpot export --model M.model --format aoti -o M.pt2 [--dtype float32] [--kernel reference] [--without-dispersion]

A committee keeps its spread only in the metatomic format (energy_ensemble); the LAMMPS file and
the AOTInductor package hold one energy and its forces, so for them a committee is refused unless
--committee-mean accepts exporting the members' mean without the spread.
"""

import argparse

from mlpot.choices import KERNELS
from mlpot.errors import MLPotError
from mlpot.files import check_output_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="mlpot model file")
    parser.add_argument("--format", default="lammps", choices=["lammps", "metatomic", "aoti"],
                        help="target engine (lammps, metatomic) or aoti: an AOTInductor package for LAMMPS and Python")
    parser.add_argument("-o", "--output", required=True, help="file to write, e.g. M-lammps.pt")
    parser.add_argument("--dtype", default="float64", help="float64 (default) or float32")
    parser.add_argument("--kernel", default="auto", choices=KERNELS,
                        help="fused kernels (auto: where built; the plugin of this mlpot version runs them) or plain torch")
    parser.add_argument("--committee-mean", action="store_true",
                        help="export a committee to lammps or aoti as its members' mean, dropping the spread (energy_std, forces_std)")
    parser.add_argument("--without-dispersion", action="store_true",
                        help="export a model with D3 dispersion without it (add LAMMPS's pair_style dispersion/d3 beside it)")


def run(args: argparse.Namespace) -> int:
    from mlpot.export.lammps import export_lammps, read_metadata
    from mlpot.models.committee import Committee
    from mlpot.models.io import load_model

    suffix = ".pt2" if args.format == "aoti" else ".pt"
    if not str(args.output).endswith(suffix):
        raise MLPotError(f"-o {args.output} must end in {suffix}")
    check_output_file(args.output, "-o")
    if args.format == "metatomic":  # the import says which extra is missing, before the model loads
        from pathlib import Path

        from mlpot.export.metatomic import export_metatomic, summary

        model = load_model(args.model)
        print(summary(export_metatomic(model, args.output, args.dtype, args.kernel, args.without_dispersion, Path(args.model).stem)))
        return 0
    model = load_model(args.model)
    target = "an AOTInductor package" if args.format == "aoti" else "pair_style mlpot's file"
    if isinstance(model, Committee) and not args.committee_mean:
        raise MLPotError(f"{args.model} is a committee of {len(model.members)} potentials and {target} holds one energy and its "
                         "forces, so the spread (energy_std, forces_std) would be dropped: add --committee-mean to export "
                         "the members' mean, or use --format metatomic, which keeps each member's energy")
    if args.format == "aoti":
        from mlpot.export import aoti

        path = aoti.export_aoti(model, args.output, args.dtype, args.kernel, args.without_dispersion)
        metadata = aoti.read_metadata(path)
    else:
        path = export_lammps(model, args.output, args.dtype, args.kernel, args.without_dispersion)
        metadata = read_metadata(path)
    print(f"wrote {path}: elements {metadata['elements']}, r_max {metadata['r_max']} Å, "
          f"{metadata['num_interactions']} interactions, {metadata['dtype']}, {metadata['kernel']} kernels")
    if isinstance(model, Committee):
        print(f"committee of {len(model.members)} potentials: exported as their mean; "
              f"the spread (energy_std, forces_std) is dropped, {'the package' if args.format == 'aoti' else 'pair_style mlpot'} has no place for it")
    if metadata["dispersion"] not in ("", "none"):
        print(f"WARNING: the export leaves out the model's D3 dispersion; in LAMMPS: pair_style hybrid/overlay mlpot "
              f"{metadata['dispersion'].removeprefix('pair_style ')} / pair_coeff * * mlpot {path} <elements> / "
              "pair_coeff * * dispersion/d3 <elements>")
    else:
        print(f"LAMMPS: pair_style mlpot / pair_coeff * * {path} <element of each atom type>")
    if args.format == "aoti":
        from mlpot.export.ops_library import build_ops_library

        ops = f"torch.ops.load_library('{build_ops_library()}'); " if metadata["kernel"] == "fused" else ""
        print(f"Python: {ops}model = torch._inductor.aoti_load_package('{path}')")
    return 0
