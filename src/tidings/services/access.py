"""Who may do what: bucket and object ACLs deciding requests from other accounts.

The owner of a bucket may do anything with it. Anyone else (an anonymous request, or
a key of another account) is decided by the ACL: the object's own when it is not
`default`, else the bucket's. `public-read` lets them read, `public-read-write` also
write.
"""

from __future__ import annotations

from tidings.errors import ServiceError
from tidings.object_models import Bucket


def may(account_id: str | None, bucket: Bucket, object_acl: str | None, write: bool) -> bool:
    """Whether a request by `account_id` (None = anonymous) is allowed."""
    if account_id is not None and account_id == bucket.owner:
        return True
    acl = object_acl if object_acl not in (None, "default") else bucket.acl
    if write:
        return acl == "public-read-write"
    return acl in ("public-read", "public-read-write")


def require(account_id: str | None, bucket: Bucket, object_acl: str | None, write: bool) -> None:
    """AccessDenied unless `may` allows the request."""
    if not may(account_id, bucket, object_acl, write):
        raise ServiceError(
            "AccessDenied",
            "You have no right to access this object because of bucket acl."
            if object_acl is None
            else "You have no right to access this object because of object acl.",
        )
