"""Store URLs and fsspec behind the store's errors: which URLs are local folders, opening any other as
an fsspec filesystem, and that filesystem (and the file objects it hands out) with every storage fault
turned into the store's one clear `StoreUnavailable` (store/failures.py).

fsspec itself is imported by `connect` only, for a store that is not a local folder (a local one is
`localfiles.LocalFiles` behind the same `Guarded`).
"""

from __future__ import annotations

import errno
import os
from typing import IO, TYPE_CHECKING, Any

from dtrun.errors import DtrunError
from dtrun.store.failures import describe_failure, is_missing_bucket, is_storage_error

if TYPE_CHECKING:
    from dtrun.store.store import Store


def local_folder(url: str) -> str | None:
    """The absolute folder of a local store URL (a path, `file://` or `local://`); None for any other."""
    if "::" in url:  # an fsspec chain (`simplecache::s3://...`)
        return None
    scheme, sep, rest = url.partition("://")
    if sep and scheme not in ("file", "local"):
        return None
    return os.path.abspath(os.path.expanduser(rest if sep else url))


def connect(url: str) -> tuple[Guarded, str]:
    """The guarded filesystem of `url` and the store's root in it; a clear error when fsspec cannot
    open that kind of URL (an S3 store without s3fs installed, an unknown protocol)."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url, **storage_options(url))
    except ImportError as exc:  # the protocol's package is missing (s3fs for S3)
        hint = "pip install 'dtrun[s3]'" if "s3" in url else "install the fsspec package for that protocol"
        raise DtrunError(f"cannot open the store {url}: {exc}", hint=hint) from None
    except ValueError as exc:
        raise DtrunError(f"cannot open the store {url}: it is not a folder or an fsspec URL ({exc})",
                         hint="`dtrun config set store FOLDER` or `s3://bucket/prefix` (or DTRUN_STORE)") from None
    return Guarded(fs, url), str(root)


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options for `url`. For S3 an explicit endpoint from the AWS variables, so that even an
    s3fs/botocore too old to read `AWS_ENDPOINT_URL` itself reaches MinIO or moto."""
    if url.startswith(("s3://", "s3a://")):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return {"endpoint_url": endpoint} if endpoint else {}
    return {}


class GuardedWrites:
    """A file object's writes, through `Store.failing` (see `Store.guarded_writes`)."""

    def __init__(self, target: IO[bytes], store: Store) -> None:
        self._target, self._store = target, store

    def write(self, data: bytes) -> int:
        with self._store.failing():
            return self._target.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class Guarded:
    """The fsspec filesystem, with the store's failures (missing bucket, unreachable endpoint, no or
    wrong credentials, no permission, no space) turned into one clear `StoreUnavailable`. A missing
    object stays `FileNotFoundError`."""

    def __init__(self, fs: Any, url: str) -> None:
        self._fs, self._url = fs, url

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._fs, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return value(*args, **kwargs)
            except (DtrunError, FileExistsError):  # FileExistsError: an exclusive write lost, not a fault
                raise
            except FileNotFoundError as exc:
                if is_missing_bucket(exc):
                    raise describe_failure(exc, self._url, _ACTIONS.get(name, "use")) from None
                raise
            except Exception as exc:
                if not is_storage_error(exc):
                    raise
                if isinstance(exc, OSError) and exc.errno == errno.ENOSYS:  # s3fs: the server's NotImplemented
                    raise NotImplementedError(f"the store {self._url} does not do this request: {exc}") from None
                raise describe_failure(exc, self._url, _ACTIONS.get(name, "use")) from None

        return call


#: What a filesystem call was doing, for the error message.
_ACTIONS = {"pipe_file": "write to", "put_file": "write to", "open": "open a file in", "mv": "write to",
            "makedirs": "write to", "cat_file": "read from", "get_file": "read from", "ls": "list", "glob": "list",
            "exists": "read from", "size": "read from", "rm": "delete from"}


def entry_mtime(entry: dict[str, Any]) -> float:
    """When an fsspec listing entry was last written, whichever key its filesystem uses for it."""
    value = entry.get("mtime") or entry.get("LastModified") or entry.get("created") or 0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)
