"""mlpot ipi: a real i-PI server (pip's ``ipi``) receives MLPotCalculator's energies and forces
over a UNIX socket; an unreachable address, a bad address, a server sending another number of
atoms or closing without EXIT are one line and exit 2."""

import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.socketio import IPIProtocol, actualunixsocketname
from ase.io import read

from mlpot.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "ethanol-rmd17"
ETHANOL = ROOT / "examples" / "structures" / "ethanol.xyz"

# Two beads, three steps; trajectories in extxyz (format "ase") and bead potentials in ASE units,
# which i-PI converts with ASE's own constants: the inverse of what ASE's client sent.
INPUT = """<simulation verbosity="low" safe_stride="1000">
  <output prefix="out">
    <properties stride="1" filename="props"> [ step, bead_potentials{{ase}} ] </properties>
    <trajectory filename="pos" stride="1" format="ase"> positions </trajectory>
    <trajectory filename="for" stride="1" format="ase"> forces </trajectory>
  </output>
  <total_steps> 3 </total_steps>
  <prng><seed> 12345 </seed></prng>
  <ffsocket name="mlpot" mode="unix" pbc="false"><address> {socket} </address></ffsocket>
  <system>
    <initialize nbeads="2">
      <file mode="ase"> ethanol.xyz </file>
      <cell mode="abc" units="angstrom"> [ 20, 20, 20 ] </cell>
      <velocities mode="thermal" units="kelvin"> 300 </velocities>
    </initialize>
    <forces><force forcefield="mlpot"/></forces>
    <motion mode="dynamics">
      <dynamics mode="nvt">
        <timestep units="femtosecond"> 0.5 </timestep>
        <thermostat mode="pile_l"><tau units="femtosecond"> 100 </tau></thermostat>
      </dynamics>
    </motion>
    <ensemble><temperature units="kelvin"> 300 </temperature></ensemble>
  </system>
</simulation>
"""


@pytest.fixture
def socket_name():
    """A fresh socket name; its /tmp/ipi_NAME file is removed afterwards."""
    name = f"mlpot-test-{uuid.uuid4().hex[:12]}"
    yield name
    Path(actualunixsocketname(name)).unlink(missing_ok=True)


def serve(socket_name, *extra):
    return main(["ipi", "--model", str(MODEL), "--address", f"unix:{socket_name}", "--structure", str(ETHANOL), *extra])


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.timeout(300)
def test_ipi_receives_the_calculators_energies_and_forces(tmp_path, socket_name, capsys):
    pytest.importorskip("ipi")
    from mlpot.calculators import MLPotCalculator

    i_pi = shutil.which("i-pi", path=str(Path(sys.executable).parent)) or shutil.which("i-pi")
    assert i_pi, "the ipi package is installed without its i-pi command"
    (tmp_path / "input.xml").write_text(INPUT.format(socket=socket_name))
    shutil.copy(ETHANOL, tmp_path / "ethanol.xyz")
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen([i_pi, "input.xml"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        status = serve(socket_name, "--timeout", "60")
        server_status = server.wait(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
    server_log = (tmp_path / "server.log").read_text()
    assert status == 0, capsys.readouterr().err + server_log
    assert server_status == 0, server_log
    assert "i-PI ended the run after 8 force evaluations" in capsys.readouterr().out  # 2 beads x (3 steps + start)

    bead_potentials = np.loadtxt(tmp_path / "out.props")[:, 1:]  # [steps + 1, beads], eV
    assert bead_potentials.shape == (4, 2)
    calculator = MLPotCalculator(MODEL)
    for bead in range(2):
        positions = read(tmp_path / f"out.pos_{bead}.extxyz", ":")
        forces = read(tmp_path / f"out.for_{bead}.extxyz", ":")
        assert len(positions) == len(forces) == 4
        for step, (frame, received) in enumerate(zip(positions, forces)):
            atoms = read(ETHANOL)
            atoms.positions = frame.positions  # Å, 8 decimals
            atoms.calc = calculator
            # tolerances: the 9 significant digits of i-PI's properties (-4209.5xxxx eV; measured 5e-6) and the
            # 1e-8 Å rounding of the written positions (5e-7 eV/Å); beads and steps differ by 1e-2 eV, 1e-1 eV/Å
            assert atoms.get_potential_energy() == pytest.approx(bead_potentials[step, bead], abs=2e-5), (bead, step)
            np.testing.assert_allclose(received.get_forces(),
                                       atoms.get_forces(), atol=2e-6, err_msg=f"bead {bead}, step {step}")
    assert np.ptp(bead_potentials) > 1e-3  # the beads and steps are distinct geometries


@pytest.mark.parametrize("unix", [True, False], ids=["unix", "tcp"])
def test_an_unreachable_address_is_one_line_after_the_timeout(socket_name, unix, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ipi", None)  # i-PI not installed here: the line names the extra
    with socket.socket() as probe:  # a TCP port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"unix:{socket_name}" if unix else f"127.0.0.1:{port}"
    status = main(["ipi", "--model", str(MODEL), "--address", address, "--structure", str(ETHANOL), "--timeout", "0.5"])
    assert status == 2
    err = one_line_error(capsys)
    assert "no i-PI server answered at" in err and "within 0.5 s" in err, err
    assert "pip install 'mlpot[ipi]'" in err, err


@pytest.mark.parametrize("address", ["unix:", "unix:a/b", "localhost", "localhost:0", "localhost:http", ":31415"])
def test_a_malformed_address_is_one_line(address, capsys):
    assert main(["ipi", "--model", str(MODEL), "--address", address, "--structure", str(ETHANOL)]) == 2
    assert "--address" in one_line_error(capsys)


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_a_timeout_that_is_not_a_positive_number_is_one_line(timeout, capsys):
    assert main(["ipi", "--model", str(MODEL), "--address", "unix:x", "--structure", str(ETHANOL), "--timeout", timeout]) == 2
    assert "--timeout must be a positive number" in one_line_error(capsys)


def test_a_socket_file_nobody_listens_on_is_named(socket_name, capsys):
    with socket.socket(socket.AF_UNIX) as left_behind:  # bound, never listening: as after a killed server
        left_behind.bind(actualunixsocketname(socket_name))
        assert serve(socket_name, "--timeout", "0.5") == 2
    assert "nothing listens, perhaps left by an ended server" in one_line_error(capsys)


def fake_server(socket_name, conversation):
    """A thread that accepts one client on /tmp/ipi_NAME and runs ``conversation(protocol)``."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(actualunixsocketname(socket_name))
    listener.listen(1)
    listener.settimeout(60)

    def accept_and_talk():
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(60)
                conversation(IPIProtocol(connection))

    thread = threading.Thread(target=accept_and_talk, daemon=True)
    thread.start()
    return thread


def test_a_server_sending_another_number_of_atoms_is_one_line(socket_name, capsys):
    def send_three_atoms(protocol):
        protocol.sendmsg("STATUS")
        assert protocol.recvmsg() == "READY"
        cell = np.eye(3) * 20.0
        protocol.sendposdata(cell, np.linalg.inv(cell).T, np.zeros((3, 3)))

    thread = fake_server(socket_name, send_three_atoms)
    assert serve(socket_name, "--timeout", "30") == 2
    thread.join(timeout=30)
    assert "i-PI sent 3 atoms" in one_line_error(capsys)


def test_a_server_closing_without_exit_is_one_line(socket_name, capsys):
    def hang_up(protocol):
        protocol.sendmsg("STATUS")
        assert protocol.recvmsg() == "READY"

    thread = fake_server(socket_name, hang_up)
    assert serve(socket_name, "--timeout", "30") == 2
    thread.join(timeout=30)
    assert "closed the connection without ending the run, after 0 force evaluations" in one_line_error(capsys)
