"""``mlpot --help``, ``mlpot COMMAND --help``, ``--version`` and argument errors answer without
loading torch and the other heavy libraries: the command modules import them in ``run()``.

All argument lists run in one fresh interpreter (torch is already loaded in this one); after each,
the heavy modules it loaded are recorded, so a failure names the first command that pulled one in.
Start-up times: benchmarks/startup/.
"""

import json
import subprocess
import sys

from mlpot.cli.main import SUBCOMMANDS

HEAVY = ("torch", "e3nn", "torch_geometric", "ase", "scipy", "matplotlib")

ACTIONS = {"data": ("convert", "info", "md-openmm", "qm"), "lammps": ("build",)}

PARSE_IN_A_FRESH_PROCESS = """
import contextlib, io, json, sys
from mlpot.cli.main import main

results = []
for argv in json.loads(sys.argv[1]):
    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            status = main(argv)
        except SystemExit as exit:
            status = exit.code
    loaded = [name for name in json.loads(sys.argv[2]) if name in sys.modules]
    results.append({"argv": argv, "status": status, "loaded": loaded, "output": output.getvalue()})
print(json.dumps(results))
"""


def parse_in_a_fresh_process(argvs):
    result = subprocess.run([sys.executable, "-c", PARSE_IN_A_FRESH_PROCESS, json.dumps(argvs), json.dumps(HEAVY)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_help_version_and_argument_errors_load_no_heavy_module():
    helps = [["--help"]] + [[name, "--help"] for name in SUBCOMMANDS]
    helps += [[name, action, "--help"] for name, actions in ACTIONS.items() for action in actions]
    errors = [[], ["no-such-command"]] + [[name, "--no-such-option"] for name in SUBCOMMANDS]
    results = parse_in_a_fresh_process(helps + [["--version"]] + errors)
    for result in results:
        assert result["loaded"] == [], f"mlpot {' '.join(result['argv'])} loaded {', '.join(result['loaded'])}"
    for result in results[:len(helps)]:
        assert result["status"] == 0, result
        words = [word for word in result["argv"] if word != "--help"]
        assert result["output"].startswith(" ".join(["usage: mlpot"] + words)), result["output"]
    version = results[len(helps)]
    assert version["status"] == 0 and version["output"].startswith("mlpot "), version
    for result in results[len(helps) + 1:]:
        assert result["status"] == 2, result
        assert "error:" in result["output"], result["output"]
        assert len(result["output"].strip().splitlines()) == 1, result["output"]  # one line, no usage block
