"""The one exception type for user mistakes.

Anything a user can cause (a missing file, a malformed frame, a bad config value, an element the
model does not know) raises :class:`MLPotError` with a one-line message naming the file, frame,
key or element. The CLI prints that line and exits non-zero; every other exception is a bug and
is allowed to propagate with its traceback.
"""


class MLPotError(Exception):
    """A user-facing error: its message is one line that says what to fix."""
