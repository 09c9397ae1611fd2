"""What went wrong with the store, in the user's terms.

fsspec, s3fs, botocore and aiohttp each raise their own exceptions for the same few faults: the bucket
is missing, there are no credentials or the wrong ones, the endpoint does not answer, the user may not
write there, the disk is full. `describe_failure` turns any of them into one `StoreUnavailable` that
names the store URL, what failed and the fix, so every command reports a store fault the same way and
never with a traceback. `probe` checks a store up front (write, read back, delete), so a run fails
before any job starts rather than after an hour of training.
"""

from __future__ import annotations

import errno
import uuid
from typing import TYPE_CHECKING

from dtrun.errors import DtrunError

if TYPE_CHECKING:
    from dtrun.store.store import Store

_ENDPOINT_HINT = "for a non-AWS server set AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL) to its address"
_CHANGE_STORE = "or point dtrun at another store: `dtrun config set store URL` or DTRUN_STORE"


class StoreUnavailable(DtrunError):
    """The store cannot be read or written: missing bucket, credentials, endpoint, permission, space."""


class CorruptRecord(DtrunError, ValueError):
    """A record in the store is truncated or is not a record (skipped by listings, with a warning).

    Also a ValueError, as a JSON decoding error is, for callers that skip unreadable records."""


def is_storage_error(exc: BaseException) -> bool:
    """Whether `exc` comes from the storage layer (and not from a bug in dtrun)."""
    if isinstance(exc, OSError):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in ("botocore", "aiobotocore", "aiohttp", "s3fs", "fsspec", "gcsfs", "adlfs")


def is_missing_bucket(exc: BaseException) -> bool:
    """s3fs reports a missing bucket as FileNotFoundError, like a missing object; tell them apart."""
    text = str(exc).lower()
    return isinstance(exc, FileNotFoundError) and (("bucket" in text and "not exist" in text)
                                                    or "nosuchbucket" in text)


def describe_failure(exc: BaseException, url: str, action: str = "use") -> StoreUnavailable:
    """One clear error for a storage fault raised while trying to `action` (read, write, list...)."""
    name = type(exc).__name__
    text = str(exc) or name
    lowered = f"{name} {text}".lower()
    bucket = _bucket(url)
    what: str
    hint: str
    if is_missing_bucket(exc) or "nosuchbucket" in lowered:
        what = f"the bucket '{bucket}' does not exist"
        hint = f"create it (e.g. `aws s3 mb s3://{bucket}`) or fix the bucket name in the store URL"
    elif "nocredentials" in lowered or "unable to locate credentials" in lowered:
        what = "no AWS credentials were found"
        hint = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials"
    elif any(k in lowered for k in ("invalidaccesskeyid", "signaturedoesnotmatch", "invalidtoken",
                                    "expiredtoken", "the aws access key id you provided")):
        what = "the AWS credentials were refused"
        hint = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile) for this endpoint"
    elif isinstance(exc, PermissionError) or "accessdenied" in lowered or "forbidden" in lowered:
        what = "permission denied"
        hint = ("give this user write access to the store (for S3, s3:GetObject, s3:PutObject, "
                "s3:ListBucket and s3:DeleteObject on the bucket), " + _CHANGE_STORE)
    elif isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on the device that holds the store"
        hint = "free some space (`dtrun volumes prune`, old runs' artifacts), " + _CHANGE_STORE
    elif isinstance(exc, OSError) and exc.errno == errno.EROFS:
        what = "the store's file system is read-only"
        hint = _CHANGE_STORE.removeprefix("or ")
    elif any(k in lowered for k in ("endpointconnection", "could not connect", "connection refused",
                                    "connectorerror", "connecttimeout", "name or service not known",
                                    "temporary failure in name resolution", "cannot connect")):
        what = "the endpoint cannot be reached"
        hint = _ENDPOINT_HINT + "; check that the server is running and reachable from here"
    elif isinstance(exc, OSError) and exc.strerror:  # a local folder: `Not a directory`, `Is a directory`
        what = exc.strerror
        hint = "make it a folder this user can write, " + _CHANGE_STORE
    else:
        what = f"{name}: {text}"
        hint = ("check `dtrun config get store` (or DTRUN_STORE); for S3 the AWS credentials and, "
                + _ENDPOINT_HINT)
    return StoreUnavailable(f"cannot {action} the store {url}: {what}", hint=hint)


def _bucket(url: str) -> str:
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


def probe(store: Store) -> None:
    """Write, read back and delete a small object under the store's root, with the calls runs make;
    raise `StoreUnavailable` on any fault (each of those calls reports its own as one already)."""
    path = f"{store.root}/.dtrun-probe-{uuid.uuid4().hex[:12]}"
    payload = b"dtrun store probe\n"
    action = "write to"
    try:
        store.write_bytes(path, payload)
        action = "read from"
        if store.read_bytes(path) != payload:
            raise StoreUnavailable(f"the store {store.url} returned other bytes than were written",
                                   hint="check that the endpoint is a real S3-compatible server")
        action = "delete from"
        store.delete(path)
    except FileNotFoundError as exc:  # the folder or the bucket went away under the probe
        raise describe_failure(exc, store.url, action) from None
