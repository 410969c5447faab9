"""``gs://bucket/prefix`` inputs: Google Cloud Storage through google-cloud-storage.

- **Where and who**: Google's standard credential chain (Application Default
  Credentials: ``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's user credentials,
  the metadata server); ``STORAGE_EMULATOR_HOST`` points the client at an
  emulator (anonymous there). The project comes from the chain too.
- **Listing**: ``objects.list`` pages of 1,000 names, fetched as the scan
  takes them (the client's page iterator): never the whole listing at once.
- **Reading**: range reads (``Range: bytes=a-b``) pinned to the object's
  generation (``ifGenerationMatch``): an object replaced while it is read
  fails as transient instead of mixing two versions.
- **Faults**: 408/429/5xx and dropped connections are retried by the
  client's own policy (exponential backoff with jitter) for
  :func:`~vscan.inputs.objectstore_base.retry_seconds`; past that an
  ObjectStoreError (transient). Absent or denied: a FileAccessError.
- **Records**: ``etag`` is the object's ETag, ``version_id`` its generation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from vscan.errors import FileAccessError, InputError, VscanError
from vscan.inputs.objectstore_base import ObjectStoreError, OnePerProcess, bucket_and_key, fetch_by_ranges, retry_seconds, wanted

__all__ = ["list_uri", "head", "read_range", "fetch"]

def _new_client():
    try:
        from google.cloud import storage
    except ImportError as exc:
        raise InputError("gs:// inputs need google-cloud-storage: pip install 'vscan[gcs]'") from exc
    return storage.Client()


#: The process's client (vscan.inputs.objectstore_base.OnePerProcess).
_client = OnePerProcess(_new_client)


def _retry():
    from google.cloud.storage.retry import DEFAULT_RETRY

    retry = DEFAULT_RETRY.with_delay(initial=0.2, maximum=10.0, multiplier=2.0)
    return retry.with_timeout(retry_seconds()) if hasattr(retry, "with_timeout") else retry.with_deadline(retry_seconds())


def _fault(uri: str, exc: BaseException) -> VscanError:
    """The record's error for a request that failed past its retries."""
    from google.api_core import exceptions as gexc

    if isinstance(exc, VscanError):
        return exc
    if isinstance(exc, (gexc.NotFound, gexc.Forbidden, gexc.Unauthorized)):
        return FileAccessError(f"{uri}: {type(exc).__name__}: {exc}")
    if isinstance(exc, gexc.PreconditionFailed):
        return ObjectStoreError(f"{uri}: the object changed while it was read (a new generation)")
    return ObjectStoreError(f"{uri}: the object store failed after retries: {type(exc).__name__}: {exc}")


def _info(uri: str, blob) -> dict[str, Any]:
    return {"uri": uri, "etag": blob.etag, "version_id": str(blob.generation) if blob.generation else None,
            "size_bytes": int(blob.size or 0)}  # fmt: skip


def list_uri(uri: str, *, all_files: bool = False) -> Iterator[str]:
    """Object URIs under ``uri`` (one object, or a prefix taken as a folder), in name order, a page at a time."""
    bucket, key = bucket_and_key(uri)
    client = _client()
    try:
        if key and not key.endswith("/"):
            if client.bucket(bucket).get_blob(key, retry=_retry()) is not None:
                yield f"gs://{bucket}/{key}"
                return
            key += "/"
        for blob in client.list_blobs(bucket, prefix=key, page_size=1000, retry=_retry()):
            if wanted(blob.name, all_files):
                yield f"gs://{bucket}/{blob.name}"
    except Exception as exc:  # noqa: BLE001 - named for the user, whatever the client raised
        error = _fault(uri, exc)
        raise (InputError(str(error)) if isinstance(error, FileAccessError) else error) from None


def head(uri: str) -> dict[str, Any]:
    """{uri, etag, version_id (generation), size_bytes} of the object."""
    bucket, key = bucket_and_key(uri)
    try:
        blob = _client().bucket(bucket).get_blob(key, retry=_retry())
    except Exception as exc:  # noqa: BLE001
        raise _fault(uri, exc) from None
    if blob is None:
        raise FileAccessError(f"{uri}: no such object")
    return _info(uri, blob)


def read_range(uri: str, start: int, stop: int, info: dict[str, Any]) -> bytes:
    """Bytes ``[start, stop)`` of the generation ``info`` names."""
    bucket, key = bucket_and_key(uri)
    generation = int(info["version_id"]) if info.get("version_id") else None
    try:
        blob = _client().bucket(bucket).blob(key, generation=generation)
        return blob.download_as_bytes(start=start, end=stop - 1, if_generation_match=generation, retry=_retry(), checksum=None)
    except Exception as exc:  # noqa: BLE001
        raise _fault(uri, exc) from None


def fetch(uri: str, folder: Path) -> tuple[Path, dict[str, Any]]:
    """The whole object into ``folder``: (local path, info with ``bytes_read``)."""
    info = head(uri)
    return fetch_by_ranges(uri, Path(folder), info, lambda a, b: read_range(uri, a, b, info))
