"""mlpot as an i-PI force client.

i-PI (https://ipi-code.org) runs the dynamics (path integrals, thermostats, replica exchange) and
asks its clients over a socket for the energy, forces and virial of each bead. The client here is
ASE's :class:`~ase.calculators.socketio.SocketClient` around an
:class:`~mlpot.calculators.MLPotCalculator`; it needs ASE only, not i-PI (the 'ipi' extra brings
the ``i-pi`` server). The protocol sends positions and the cell, in atomic units, but no
species: the client takes them, and the periodicity, from a structure file holding the same
atoms in the same order as i-PI's.

Addresses are i-PI's: ``unix:NAME`` is the UNIX socket /tmp/ipi_NAME (``<ffsocket mode="unix">
<address>NAME</address>``), ``HOST:PORT`` a TCP socket (``mode="inet"``).
"""

import socket
import time
from dataclasses import dataclass
from typing import Optional

from ase import Atoms
from ase.calculators.socketio import IPIProtocol, SocketClient, SocketClosed, actualunixsocketname

from mlpot.errors import MLPotError

RETRY_INTERVAL = 0.2  # s between attempts to reach a server that is not listening yet


@dataclass(frozen=True)
class IPIAddress:
    """A UNIX socket name (``unix``) or a TCP ``host`` and ``port``."""

    unix: Optional[str] = None
    host: Optional[str] = None
    port: Optional[int] = None

    def __str__(self) -> str:
        if self.unix is not None:
            return f"unix:{self.unix} ({actualunixsocketname(self.unix)})"
        return f"{self.host}:{self.port}"


def parse_address(text: str) -> IPIAddress:
    """``unix:NAME`` or ``HOST:PORT``, or one line saying which form is expected."""
    if text.startswith("unix:"):
        name = text[len("unix:"):]
        if not name or "/" in name:
            raise MLPotError(f"--address {text}: give unix:NAME, a socket name without '/' (i-PI listens on /tmp/ipi_NAME)")
        return IPIAddress(unix=name)
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MLPotError(f"--address {text}: give unix:NAME or HOST:PORT with a port from 1 to 65535")
    return IPIAddress(host=host, port=int(port))


class _CheckedProtocol(IPIProtocol):
    """ASE's i-PI protocol, refusing positions for a different number of atoms than the client's
    structure (ASE would fail assigning them with a numpy broadcasting error), and noting a
    server that closed the connection without its EXIT message (ASE takes both as the end)."""

    def __init__(self, sock: socket.socket, natoms: int, where: str, txt=None) -> None:
        super().__init__(sock, txt)
        self.natoms = natoms
        self.where = where
        self.closed_without_exit = False

    def recvmsg(self) -> str:
        try:
            return super().recvmsg()
        except SocketClosed:
            self.closed_without_exit = True
            raise

    def recvposdata(self):
        cell, icell, positions = super().recvposdata()  # Å, 1/Å, Å [N, 3]
        if len(positions) != self.natoms:
            raise MLPotError(f"i-PI sent {len(positions)} atoms; {self.where} has {self.natoms}: give the structure i-PI runs")
        return cell, icell, positions


def check_timeout(timeout: float) -> None:
    if not 0 < timeout < float("inf"):  # NaN fails too
        raise MLPotError(f"--timeout must be a positive number of seconds, got {timeout}")


def connect(address: IPIAddress, timeout: float) -> SocketClient:
    """A client connected to the i-PI server at ``address``, retrying while it is not listening
    (it may still be starting) for at most ``timeout`` seconds, then one line."""
    deadline = time.monotonic() + timeout
    previous_default = socket.getdefaulttimeout()
    while True:
        remaining = deadline - time.monotonic()
        # SocketClient makes and connects its socket in __init__: the default timeout bounds a
        # connect to a host that does not answer; it then sets the socket's own (None: blocking).
        socket.setdefaulttimeout(max(remaining, 0.01))
        try:
            return SocketClient(host=address.host, port=address.port, unixsocket=address.unix, timeout=None)
        except OSError as error:  # refused, no such socket file, unknown host, timed out
            reason = error.strerror or str(error) or type(error).__name__
            if address.unix is not None and isinstance(error, ConnectionRefusedError):
                reason += ": the socket file is there but nothing listens, perhaps left by an ended server"
        finally:
            socket.setdefaulttimeout(previous_default)
        if time.monotonic() + RETRY_INTERVAL > deadline:
            raise MLPotError(f"no i-PI server answered at {address} within {timeout:g} s ({reason}){_server_hint()}")
        time.sleep(RETRY_INTERVAL)


def _server_hint() -> str:
    """Where the server comes from, when it is not installed here."""
    try:
        import ipi  # noqa: F401
    except ImportError:
        return "; start one with i-pi input.xml (i-PI is not installed here; install the 'ipi' extra: pip install 'mlpot[ipi]')"
    return "; start one with i-pi input.xml"


def serve(atoms: Atoms, address: IPIAddress, timeout: float, where: str) -> int:
    """Answer i-PI's force requests for ``atoms`` (with its calculator attached) until the server
    ends the connection; returns the number of force evaluations. ``where`` names the structure
    in errors. The virial is sent for periodic structures only (zero otherwise), as i-PI's
    molecular runs expect."""
    check_timeout(timeout)
    client = connect(address, timeout)
    client.protocol = _CheckedProtocol(client.protocol.socket, len(atoms), where)
    evaluations = 0
    try:
        for _ in client.irun(atoms, use_stress=bool(atoms.pbc.all())):
            evaluations += 1
    except (ConnectionError, socket.timeout) as error:
        raise MLPotError(f"connection to i-PI at {address} lost after {evaluations} force evaluations ({error})") from None
    finally:
        client.close()
    if client.protocol.closed_without_exit:
        raise MLPotError(f"i-PI at {address} closed the connection without ending the run, after {evaluations} "
                         "force evaluations: see the server's output")
    return evaluations
