"""Every exception Lab raises derives from :class:`LabError`.

Bad arguments raise the built-in ``TypeError`` (wrong type) or ``ValueError``
(right type, bad value), with a message that names the argument, shows the value
and says what was expected.
"""

from lab._lab import (
    AmbiguousRunError,
    LabError,
    ModelNotFoundError,
    NoActiveRunError,
    NotAProjectError,
    RunEndedError,
    RunNotFoundError,
    ServerError,
    StorageError,
)
from lab.experiment import LabWarning
from lab.run import ModelIntegrityError

__all__ = [
    "AmbiguousRunError",
    "LabError",
    "LabWarning",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "NoActiveRunError",
    "NotAProjectError",
    "RunEndedError",
    "RunNotFoundError",
    "ServerError",
    "StorageError",
]
