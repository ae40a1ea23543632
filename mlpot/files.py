"""Files a command reads and writes: checks up front, and all-or-nothing output.

A command checks its inputs and output paths before any work (:func:`check_input_file`,
:func:`check_output_file`, :func:`check_output_directory`), so that a mistake is one line and
nothing is written. Output goes through :func:`atomic_output`: a temporary file beside the
target, renamed into place, so a failed or killed process never leaves a partial file under the
final name.
"""

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Union

from mlpot.errors import MLPotError


def check_input_file(path: Union[str, Path], what: str = "file") -> Path:
    """``path`` as a readable regular file, or one line: missing, a directory, unreadable."""
    path = Path(path)
    if path.is_dir():
        raise MLPotError(f"{what} {path} is a directory, not a file")
    if not path.exists():
        raise MLPotError(f"{what} {path} does not exist")
    if not os.access(path, os.R_OK):
        raise MLPotError(f"{what} {path} cannot be read (permission denied)")
    return path


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (the folder a write would have to create under)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_creatable_parent(path: Path, option: str) -> None:
    ancestor = _nearest_existing(path.parent)
    if not ancestor.is_dir():
        raise MLPotError(f"{option} {path}: {ancestor} is a file, not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise MLPotError(f"{option} {path} cannot be written ({ancestor}: permission denied)")


def check_output_file(path: Union[str, Path], option: str = "output") -> Path:
    """Fail now, in one line naming ``option``, if ``path`` cannot be written as a file."""
    path = Path(path)
    if path.is_dir():
        raise MLPotError(f"{option} {path} is a directory; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise MLPotError(f"{option} {path} cannot be written (permission denied)")
    _check_creatable_parent(path, option)
    return path


def check_output_directory(path: Union[str, Path], option: str = "output directory") -> Path:
    """Fail now if ``path`` cannot be (or be made into) a writable directory; creates nothing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise MLPotError(f"{option} {path} is a file, not a directory")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise MLPotError(f"{option} {path} cannot be written (permission denied)")
        return path
    _check_creatable_parent(path, option)
    return path


@contextmanager
def atomic_output(path: Union[str, Path], mode: str = "wb") -> Iterator[IO]:
    """``with atomic_output(path, "w") as stream: ...`` writes ``path`` all or nothing."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise MLPotError(f"cannot write {path} ({error.strerror or error})") from None
    try:
        with os.fdopen(handle, mode) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes files private; use the usual mode
        try:
            os.replace(temporary, path)
        except OSError as error:  # e.g. the target is a directory
            raise MLPotError(f"cannot write {path} ({error.strerror or error})") from None
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
