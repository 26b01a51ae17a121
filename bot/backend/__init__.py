"""The Starpod instance backend: client, models, errors and log-line parsing."""

from bot.backend.client import InstanceClient
from bot.backend.errors import (
    AmbiguousInstance,
    BackendError,
    BackendProtocolError,
    BackendStatusError,
    BackendUnavailable,
    InstanceLookupError,
    InstanceNotFound,
    PrefixTooShort,
)
from bot.backend.models import HealthInfo, Instance, InstanceStatus, LogEntry, LogLevel, SshInfo
from bot.backend.refs import MIN_ACTION_PREFIX, nearest_names, pick_instance

__all__ = [
    "MIN_ACTION_PREFIX",
    "AmbiguousInstance",
    "BackendError",
    "BackendProtocolError",
    "BackendStatusError",
    "BackendUnavailable",
    "HealthInfo",
    "Instance",
    "InstanceClient",
    "InstanceLookupError",
    "InstanceNotFound",
    "InstanceStatus",
    "LogEntry",
    "LogLevel",
    "PrefixTooShort",
    "SshInfo",
    "nearest_names",
    "pick_instance",
]
