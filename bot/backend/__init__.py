"""The Starpod instance backend: client, models, errors and log-line parsing."""

from bot.backend.client import InstanceClient, pick_instance
from bot.backend.errors import (
    AmbiguousInstance,
    BackendError,
    BackendProtocolError,
    BackendStatusError,
    BackendUnavailable,
    InstanceLookupError,
    InstanceNotFound,
)
from bot.backend.models import HealthInfo, Instance, InstanceStatus, LogEntry, LogLevel, SshInfo

__all__ = [
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
    "SshInfo",
    "pick_instance",
]
