"""``az://container/prefix`` inputs: Azure Blob Storage through azure-storage-blob.

- **Where and who**: ``AZURE_STORAGE_CONNECTION_STRING`` (account, key or
  SAS, and endpoint: Azurite's too), or ``AZURE_STORAGE_ACCOUNT_URL`` (or
  ``AZURE_STORAGE_ACCOUNT_NAME``, for ``https://NAME.blob.core.windows.net``)
  with ``AZURE_STORAGE_ACCOUNT_KEY``, ``AZURE_STORAGE_SAS_TOKEN``, or else
  azure-identity's DefaultAzureCredential chain (environment, workload and
  managed identity, Azure CLI) when that package is installed.
- **Listing**: ``List Blobs`` pages of 1,000 names, fetched as the scan takes them.
- **Reading**: range reads pinned to the blob's ETag (``If-Match``): a blob
  replaced while it is read fails as transient instead of mixing versions.
- **Faults**: 408, 5xx (Azure throttles with 503 ServerBusy) and dropped
  connections are retried with exponential backoff and jitter,
  :func:`~vscan.inputs.objectstore_base.max_attempts` in all; past that an
  ObjectStoreError (transient). Absent or denied: a FileAccessError.
- **Records**: ``etag`` is the blob's ETag, ``version_id`` its version (when versioning is on).
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Iterator

from vscan.errors import FileAccessError, InputError, VscanError
from vscan.inputs.objectstore_base import ObjectStoreError, OnePerProcess, bucket_and_key, fetch_by_ranges, max_attempts, wanted

__all__ = ["list_uri", "head", "read_range", "fetch"]

def _doubling_retry(exponential: type) -> type:
    """Azure's ``ExponentialRetry`` with waits of ``initial_backoff * increment_base ** n`` (0.5, 1, 2, 4 s ..., each
    +- ``random_jitter_range`` of itself), the backoff of the S3 and GCS paths. Azure's own adds ``increment_base ** n``
    to the initial wait (0.5, 2.5, 4.5, 8.5 s ...); its default policy waits 15 s before its first retry."""

    class DoublingRetry(exponential):
        def get_backoff_time(self, settings: dict) -> float:
            wait = self.initial_backoff * self.increment_base ** settings["count"]
            return random.uniform(wait * (1 - self.random_jitter_range), wait * (1 + self.random_jitter_range))

    return DoublingRetry


def _new_service():
    try:
        from azure.storage.blob import BlobServiceClient, ExponentialRetry
    except ImportError as exc:
        raise InputError("az:// inputs need azure-storage-blob: pip install 'vscan[azure]'") from exc
    retry = _doubling_retry(ExponentialRetry)(initial_backoff=0.5, increment_base=2, retry_total=max_attempts() - 1, random_jitter_range=0.25)
    options = {"retry_policy": retry, "connection_timeout": 10, "read_timeout": 60}
    text = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if text:
        svc = BlobServiceClient.from_connection_string(text, **options)
    else:
        name = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
        url = os.environ.get("AZURE_STORAGE_ACCOUNT_URL") or (f"https://{name}.blob.core.windows.net" if name else None)
        if not url:
            raise InputError("az:// inputs need AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME / AZURE_STORAGE_ACCOUNT_URL")
        svc = BlobServiceClient(url, credential=_credential(name), **options)
    return svc


#: The process's service client (vscan.inputs.objectstore_base.OnePerProcess).
_service = OnePerProcess(_new_service)


def _credential(name: str | None):
    key, sas = os.environ.get("AZURE_STORAGE_ACCOUNT_KEY"), os.environ.get("AZURE_STORAGE_SAS_TOKEN")
    if key:
        return {"account_name": name, "account_key": key} if name else key
    if sas:
        return sas
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        return None  # anonymous: public containers only
    return DefaultAzureCredential()


def _fault(uri: str, exc: BaseException) -> VscanError:
    from azure.core import exceptions as aexc

    if isinstance(exc, VscanError):
        return exc
    if isinstance(exc, (aexc.ResourceNotFoundError, aexc.ClientAuthenticationError)) or getattr(exc, "status_code", 0) in (401, 403, 404):
        return FileAccessError(f"{uri}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    if isinstance(exc, aexc.ResourceModifiedError) or getattr(exc, "status_code", 0) == 412:
        return ObjectStoreError(f"{uri}: the blob changed while it was read (a new ETag)")
    return ObjectStoreError(f"{uri}: the object store failed after retries: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def list_uri(uri: str, *, all_files: bool = False) -> Iterator[str]:
    """Blob URIs under ``uri`` (one blob, or a prefix taken as a folder), in name order, a page at a time."""
    container, key = bucket_and_key(uri)
    try:
        client = _service().get_container_client(container)
        if key and not key.endswith("/"):
            try:
                client.get_blob_client(key).get_blob_properties()
                yield f"az://{container}/{key}"
                return
            except Exception as exc:  # noqa: BLE001
                if not isinstance(_fault(uri, exc), FileAccessError):
                    raise
            key += "/"
        for page in client.list_blobs(name_starts_with=key, results_per_page=1000).by_page():
            for blob in page:
                if wanted(blob.name, all_files):
                    yield f"az://{container}/{blob.name}"
    except Exception as exc:  # noqa: BLE001
        error = _fault(uri, exc)
        raise (InputError(str(error)) if isinstance(error, FileAccessError) else error) from None


def head(uri: str) -> dict[str, Any]:
    """{uri, etag, version_id, size_bytes} of the blob."""
    container, key = bucket_and_key(uri)
    try:
        props = _service().get_blob_client(container, key).get_blob_properties()
    except Exception as exc:  # noqa: BLE001
        raise _fault(uri, exc) from None
    return {"uri": uri, "etag": str(props.etag).strip('"'), "version_id": props.version_id, "size_bytes": int(props.size)}


def read_range(uri: str, start: int, stop: int, info: dict[str, Any]) -> bytes:
    """Bytes ``[start, stop)`` of the blob as ``info``'s ETag names it."""
    from azure.core import MatchConditions

    container, key = bucket_and_key(uri)
    try:
        blob = _service().get_blob_client(container, key)
        pinned = {"etag": f'"{info["etag"]}"', "match_condition": MatchConditions.IfNotModified} if info.get("etag") else {}
        return blob.download_blob(offset=start, length=stop - start, max_concurrency=1, **pinned).readall()
    except Exception as exc:  # noqa: BLE001
        raise _fault(uri, exc) from None


def fetch(uri: str, folder: Path) -> tuple[Path, dict[str, Any]]:
    """The whole blob into ``folder``: (local path, info with ``bytes_read``)."""
    info = head(uri)
    return fetch_by_ranges(uri, Path(folder), info, lambda a, b: read_range(uri, a, b, info))
