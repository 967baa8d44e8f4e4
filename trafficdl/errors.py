"""The one exception family the CLI turns into a one-line error.

Anything a user can cause (bad input file, bad flag combination, unreadable
dataset, unreachable master) raises a subclass of TrafficdlError with a
message that says what to do; the CLI prints it on one line and exits 2.
Anything else is a bug and keeps its traceback.
"""


class TrafficdlError(Exception):
    """A user-facing error: its message is printed as is, without a traceback."""
