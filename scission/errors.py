"""The scission error tree; the CLI turns any of these into one line on stderr and exit status 2.

ScissionError
 +-- ProfileError          a profile file or folder is missing, unreadable or malformed
 |    +-- LegacyFormatError a legacy .dat pickle is not what the original tool wrote (or is hostile)
 +-- NetworkTableError     the network CSV is missing or malformed (names the line)
 +-- ConstraintError       a criterion, cap or number the user gave cannot be understood
 +-- UnknownModel          the model is in none of the profiles (lists the known ones)
 +-- MissingNetworkPair    a configuration needs a (sender, receiver) row the table lacks
 +-- BenchmarkError        a model could not be built, loaded or timed
"""

from __future__ import annotations


class ScissionError(Exception):
    """Root of every error scission raises on purpose."""


class ProfileError(ScissionError):
    pass


class LegacyFormatError(ProfileError):
    pass


class NetworkTableError(ScissionError):
    pass


class ConstraintError(ScissionError):
    pass


class UnknownModel(ScissionError):
    def __init__(self, model: str, known: list[str]):
        self.model = model
        self.known = sorted(known)
        super().__init__(f"unknown model {model!r}; known models: {', '.join(self.known) or '(none)'}")


class MissingNetworkPair(ScissionError):
    def __init__(self, source: str, destination: str):
        self.source = source
        self.destination = destination
        super().__init__(
            f"the network table has no row for {source} -> {destination}, which a configuration needs; "
            "add the row or exclude one of the two resources"
        )


class BenchmarkError(ScissionError):
    pass


class UnknownRuntime(ScissionError):
    """A runtime name that is not one of scission.runtimes.RUNTIMES (or auto)."""
