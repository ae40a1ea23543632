"""The example scripts run as documented (few steps)."""

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(*args, cwd):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_md_script(tmp_path):
    result = run(EXAMPLES / "md_ase.py", "--steps", 20, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("nvt epot") == 2 and result.stdout.count("nve epot") == 2


def test_optimisation_script(tmp_path):
    result = run(EXAMPLES / "optimize.py", "--output", tmp_path / "relaxed.xyz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "after:  a = 3.72" in result.stdout and (tmp_path / "relaxed.xyz").is_file()


def test_structures_script_reproduces_the_shipped_files(tmp_path):
    import shutil

    copy = tmp_path / "structures"
    shutil.copytree(EXAMPLES / "structures", copy)
    result = run(copy / "make_structures.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("cuau-fcc-256.xyz", "ethanol.xyz"):
        assert (copy / name).read_text() == (EXAMPLES / "structures" / name).read_text()


def test_scattering_example_runs_every_command(tmp_path):
    """examples/scattering/run.sh, shortened: MD of crystal and melt, both analyses, phonons."""
    import os

    out = tmp_path / "out"
    result = subprocess.run(["bash", str(EXAMPLES / "scattering" / "run.sh")], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "STEPS": "400", "OUT": str(out)})
    assert result.returncode == 0, result.stderr
    for name in ("crystal-analysis/summary.json", "crystal-analysis/vdos.csv", "melt-analysis/sqw.csv",
                 "melt-analysis/sq.png", "phonons/band.yaml", "phonons/phonopy_params.yaml", "phonons/band_structure.png"):
        assert (out / name).is_file(), name
