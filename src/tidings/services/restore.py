"""Restoring archive-class objects: the state machine, on the server clock (spec 7.13).

frozen --RestoreObject (202)--> ongoing --delay--> done --days--> frozen again.
A RestoreObject while ongoing is 409; on a done copy it extends the lifetime (200).
The state is computed from the stored times whenever it is read, so it is right even
before the background sweep has written the transition down.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tidings.errors import ServiceError, invalid_argument
from tidings.object_models import FROZEN, RESTORED, RESTORING, ObjectVersion, Restore
from tidings.services.object_rules import ARCHIVE_CLASSES, check_restore_days

DAY_MS = 86_400_000
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS

# Nominal restore durations by (storage class, tier); tests shorten them with the
# server clock (`--clock-speed`).
RESTORE_DELAY_MS = {
    ("Archive", "Standard"): 1 * MINUTE_MS,
    ("ColdArchive", "Expedited"): 1 * HOUR_MS,
    ("ColdArchive", "Standard"): 5 * HOUR_MS,
    ("ColdArchive", "Bulk"): 12 * HOUR_MS,
    ("DeepColdArchive", "Expedited"): 12 * HOUR_MS,
    ("DeepColdArchive", "Standard"): 48 * HOUR_MS,
}
MAX_DAYS = {"Archive": 7, "ColdArchive": 365, "DeepColdArchive": 365}


def effective_restore(version: ObjectVersion, now_ms: int) -> Restore:
    """The restore state now: a restore whose time has come is done, an expired one gone."""
    restore = version.restore
    if restore.state == RESTORING and restore.ready_ms is not None and now_ms >= restore.ready_ms:
        expiry = restore.ready_ms + (restore.days or 1) * DAY_MS
        restore = replace(restore, state=RESTORED, expiry_ms=expiry)
    if restore.state == RESTORED and restore.expiry_ms is not None and now_ms >= restore.expiry_ms:
        return Restore()
    return restore


def request_restore(
    version: ObjectVersion, days: int, tier: str | None, now_ms: int
) -> tuple[int, dict[str, Any]]:
    """The status of a RestoreObject and the columns it changes."""
    if version.storage_class not in ARCHIVE_CLASSES:
        raise ServiceError(
            "OperationNotSupported",
            f"RestoreObject applies to archive classes, not to {version.storage_class}.",
        )
    check_restore_days(days, version.storage_class)
    if version.storage_class == "Archive" or tier is None:
        tier = "Standard"
    delay = RESTORE_DELAY_MS.get((version.storage_class, tier))
    if delay is None:
        raise invalid_argument(f"Tier {tier!r} is not available for {version.storage_class}.")
    state = effective_restore(version, now_ms)
    if state.state == RESTORING:
        raise ServiceError("RestoreAlreadyInProgress", "The restore operation is in progress.")
    if state.state == RESTORED:
        # Extend from now, never beyond the class's maximum lifetime.
        cap = MAX_DAYS[version.storage_class] * DAY_MS
        expiry = min(now_ms + days * DAY_MS, (state.ready_ms or now_ms) + cap)
        return 200, {
            "restore_state": RESTORED,
            "restore_ready_ms": state.ready_ms,
            "restore_expiry_ms": max(expiry, state.expiry_ms or 0),
            "restore_days": days,
        }
    return 202, {
        "restore_state": RESTORING,
        "restore_ready_ms": now_ms + delay,
        "restore_expiry_ms": None,
        "restore_days": days,
        "restore_tier": tier,
    }


def frozen_again() -> dict[str, Any]:
    """The columns of a version whose restored copy expired."""
    return {
        "restore_state": FROZEN,
        "restore_ready_ms": None,
        "restore_expiry_ms": None,
        "restore_days": None,
        "restore_tier": None,
    }


def settled_restore(version: ObjectVersion, now_ms: int) -> dict[str, Any] | None:
    """The columns that write down what `effective_restore` says by `now_ms`, or None.

    Reads never depend on it (they compute the state themselves); the lifecycle runner
    writes it down so the stored state, and the events reporting it, follow the clock.
    """
    state = effective_restore(version, now_ms)
    if state == version.restore:
        return None
    if state.state == FROZEN:
        return frozen_again()
    return {"restore_state": state.state, "restore_expiry_ms": state.expiry_ms}
