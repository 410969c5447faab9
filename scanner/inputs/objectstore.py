"""Inputs in S3-compatible object storage: ``vscan scan s3://bucket/prefix``.

- **Where**: AWS S3, or any S3-compatible store through the standard
  ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``) variable; credentials
  from boto3's standard chain (environment, ``~/.aws`` config and
  credentials files, SSO, container and instance roles).
- **Listing** (:func:`list_uri`): ``ListObjectsV2`` pages of up to 1,000
  keys, streamed: the driver holds one page at a time, never the whole
  listing (discovery is a generator; the scan takes keys as it has room).
  A URI naming one object is that object; otherwise it is a prefix (a
  "folder": ``s3://b/x`` lists ``x/...``). Media suffixes only, unless
  ``--all-files``.
- **Reading** (:func:`decode_object`, in the decode task): the object is
  streamed once to a private temporary file (``GetObject``), decoded there
  as a local file, and the file deleted. Whole objects are read: the
  decoders open local paths, so range reads (keyframes only) are not done yet.
- **Faults**: throttling (SlowDown, 503), 5xx and dropped connections are
  retried by botocore with exponential backoff and jitter (``standard`` mode,
  ``VSCAN_S3_MAX_ATTEMPTS`` attempts, default 10). Past that the file's
  record is an :class:`ObjectStoreError`, kind ``transient``: not the file's
  fault, scanned again by the next run over the same output, never kept in
  ``--state``. A missing object or a denied read is a ``FileAccessError``.
- **Records** carry the URI as ``path`` and ``object``: ``{uri, etag,
  version_id, size_bytes, bytes_read}``; resume and ``--state`` key on the
  URI and the content's SHA-256 as for files.

``http://`` and ``https://`` URLs are single objects (never listed):
fetched with GET, retried as above on 408/425/429/5xx and dropped
connections (exponential backoff with jitter, honouring ``Retry-After``);
401/403/404/410 are a ``FileAccessError``; ``etag`` is the response's ETag.
``gs://bucket/prefix`` (Google Cloud Storage) and ``az://container/prefix``
(Azure Blob Storage) are served by :mod:`vscan.inputs.objectstore_gcs` and
:mod:`vscan.inputs.objectstore_azure` the same way: paged listing, retries
that are never the file's fault, records with the ETag and version.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

from vscan.errors import FileAccessError, InputError, VscanError, error_info
from vscan.inputs.objectstore_base import ObjectStoreError, OnePerProcess, bucket_and_key, max_attempts

__all__ = ["ObjectStoreError", "is_uri", "normalize", "split", "list_uri", "check_uri", "fetch", "head", "read_range", "decode_object", "SCHEMES"]

SCHEMES = ("s3", "gs", "az", "http", "https")
#: HTTP answers retried with backoff (throttling and the server's trouble), and those that are the file's (absent, forbidden).
HTTP_RETRY = (408, 425, 429, 500, 502, 503, 504)
HTTP_ACCESS = (401, 403, 404, 410)


def normalize(text: str) -> str:
    """``s3://b/k`` as given, or repaired after a ``pathlib.Path`` folded its ``//`` (``s3:/b/k``)."""
    text = os.fspath(text)
    for scheme in SCHEMES:
        if text.startswith(f"{scheme}:/") and not text.startswith(f"{scheme}://"):
            return f"{scheme}://" + text[len(scheme) + 2 :]
    return text


def is_uri(path: Any) -> bool:
    return isinstance(path, (str, os.PathLike)) and normalize(os.fspath(path)).startswith(tuple(f"{s}://" for s in SCHEMES))


def split(uri: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``."""
    return bucket_and_key(normalize(uri))


def _new_client():
    """An S3 client on boto3's standard credential chain and endpoint variables (AWS_ENDPOINT_URL)."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise InputError("s3:// inputs need boto3: pip install 'vscan[s3]'") from exc
    config = Config(retries={"max_attempts": max_attempts(), "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return boto3.session.Session().client("s3", config=config)


#: The process's S3 client (vscan.inputs.objectstore_base.OnePerProcess).
client = OnePerProcess(_new_client)


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", "")) if hasattr(exc, "response") else ""


def _status(exc: BaseException) -> int:
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0) if hasattr(exc, "response") else 0


def _is_access(exc: BaseException) -> bool:
    return _code(exc) in ("NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403", "NotFound") or _status(exc) in (403, 404)


def check_uri(uri: str) -> str:
    """A usage check before the scan starts: the bucket answers, and the URI names an object or a non-empty prefix."""
    uri = normalize(uri)
    try:
        next(list_uri(uri, all_files=True))
    except StopIteration:
        raise InputError(f"{uri}: no objects there") from None
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{uri}: cannot list: {_describe(exc)}") from None
    return uri


def list_uri(uri: str, *, all_files: bool = False) -> Iterator[str]:
    """The object URIs under ``uri`` in key order, page by page (module docstring); a URL is itself."""
    from vscan.inputs.media_types import MEDIA_SUFFIXES

    if _backend(uri) is not None:
        yield from _backend(uri).list_uri(normalize(uri), all_files=all_files)
        return
    if _is_http(uri):
        answer = _http(normalize(uri), "HEAD")  # answers (retried), or a FileAccessError / ObjectStoreError
        if answer is not None:
            answer.close()
        yield normalize(uri)
        return
    bucket, key = split(uri)
    s3 = client()
    if key and not key.endswith("/"):
        try:
            s3.head_object(Bucket=bucket, Key=key)
            yield f"s3://{bucket}/{key}"
            return
        except Exception as exc:
            if not _is_access(exc):
                raise
        key += "/"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key, PaginationConfig={"PageSize": 1000})
    for page in pages:
        for item in page.get("Contents", ()):
            name = item["Key"]
            if name.endswith("/"):
                continue
            if all_files or Path(name).suffix.lower() in MEDIA_SUFFIXES:
                yield f"s3://{bucket}/{name}"


def fetch(uri: str, folder: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """The object streamed into ``folder``: (local path, {uri, etag, version_id, size_bytes, bytes_read})."""
    if _is_http(uri):
        return _fetch_http(normalize(uri), Path(folder))
    if _backend(uri) is not None:
        return _backend(uri).fetch(normalize(uri), Path(folder))
    bucket, key = split(uri)
    local = Path(folder) / (Path(key).name or "object")
    try:
        response = client().get_object(Bucket=bucket, Key=key)
        read = 0
        with open(local, "wb") as out:
            for chunk in response["Body"].iter_chunks(1 << 20):
                out.write(chunk)
                read += len(chunk)
    except VscanError:
        raise
    except Exception as exc:
        if _is_access(exc):
            raise FileAccessError(f"{uri}: {_describe(exc)}") from None
        raise ObjectStoreError(f"{uri}: the object store failed after retries: {_describe(exc)}") from None
    info = {"uri": normalize(uri), "etag": str(response.get("ETag", "")).strip('"') or None, "version_id": response.get("VersionId"),
            "size_bytes": int(response.get("ContentLength", read)), "bytes_read": read}  # fmt: skip
    return local, info


def head(uri: str) -> dict[str, Any]:
    """{uri, etag, version_id, size_bytes} of an s3://, gs:// or az:// object."""
    if _backend(uri) is not None:
        return _backend(uri).head(normalize(uri))
    bucket, key = split(uri)
    try:
        answer = client().head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        raise _fault(uri, exc) from None
    return {"uri": normalize(uri), "etag": str(answer.get("ETag", "")).strip('"') or None, "version_id": answer.get("VersionId"),
            "size_bytes": int(answer.get("ContentLength", 0))}  # fmt: skip


def read_range(uri: str, start: int, stop: int, info: dict[str, Any]) -> bytes:
    """Bytes ``[start, stop)`` of the object as ``info`` names it (its version, or If-Match its ETag)."""
    if _backend(uri) is not None:
        return _backend(uri).read_range(normalize(uri), start, stop, info)
    bucket, key = split(uri)
    pinned = {"VersionId": info["version_id"]} if info.get("version_id") else {"IfMatch": f'"{info["etag"]}"'} if info.get("etag") else {}
    try:
        return client().get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{stop - 1}", **pinned)["Body"].read()
    except Exception as exc:
        raise _fault(uri, exc) from None


def _fault(uri: str, exc: BaseException) -> VscanError:
    if isinstance(exc, VscanError):
        return exc
    if _code(exc) in ("PreconditionFailed", "412") or _status(exc) == 412:
        return ObjectStoreError(f"{uri}: the object changed while it was read (a new ETag)")
    if _is_access(exc):
        return FileAccessError(f"{uri}: {_describe(exc)}")
    return ObjectStoreError(f"{uri}: the object store failed after retries: {_describe(exc)}")


def decode_object(uri: str, config, known_sha256, benign, decode: Callable, decode_frames: Callable | None = None) -> tuple[dict[str, Any], Any]:
    """decode_for_scan of an object, the summary naming the URI: decoded by range reads where
    vscan.inputs.ranged allows (``decode_frames``: the decode task's frame step), else fetched
    to a temporary file, decoded with its digests, deleted."""
    from vscan.inputs.ranged import ranges_wanted

    uri = normalize(uri)
    if decode_frames is not None and ranges_wanted(uri, known_sha256, benign, config.runtime.object_reads):
        return _decode_ranges(uri, config, decode_frames)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vscan-object-") as tmp:
        try:
            local, info = fetch(uri, tmp)
        except VscanError as exc:
            return {"path": uri, "sha256": None, "md5": None, "size_bytes": None, "error": error_info(exc)}, None
        fetched = time.perf_counter() - t0
        summary, payload = decode(str(local), config, known_sha256, benign)
    summary["path"] = uri
    if summary.get("error"):
        summary["error"] = {**summary["error"], "message": summary["error"]["message"].replace(str(local), uri)}
    summary["object"] = {**info, "read": "whole"}
    summary["timings"] = {**summary.get("timings", {}), "fetch": fetched}
    return summary, payload


def _decode_ranges(uri: str, config, decode_frames: Callable) -> tuple[dict[str, Any], Any]:
    """The object decoded where it lies (vscan.inputs.ranged): no content digests; a store failure stays the store's."""
    from vscan.errors import UnsupportedMediaError
    from vscan.inputs.ranged import RangeFile, registered

    t0 = time.perf_counter()
    summary: dict[str, Any] = {"path": uri, "sha256": None, "md5": None, "sha1": None, "size_bytes": None, "error": None}
    source, payload, info = None, None, {"uri": uri}
    try:
        info = head(uri)
        summary["size_bytes"] = info["size_bytes"]
        if info["size_bytes"] == 0:
            raise UnsupportedMediaError(f"{uri}: empty object (0 bytes)")
        source = RangeFile(lambda start, stop: read_range(uri, start, stop, info), info["size_bytes"])
        with registered(uri, source):
            payload = decode_frames(uri, config, summary, t0)
    except Exception as exc:  # noqa: BLE001 - a bad object is a record, never a crash of the scan
        summary["error"], payload = error_info(exc), None
    if source is not None and source.failure is not None:  # the decoder saw a read fail: the store's fault, whatever it made of it
        summary["error"], payload = error_info(source.failure), None
    read = source.bytes_read if source is not None else 0
    summary["object"] = {**info, "bytes_read": read, "read": "ranges"}
    summary["timings"] = {**summary.get("timings", {"decode": time.perf_counter() - t0}),
                          "fetch": source.fetch_seconds if source is not None else 0.0}  # fmt: skip
    return summary, payload


def _describe(exc: BaseException) -> str:
    code = _code(exc)
    return f"{code or type(exc).__name__}: {exc}"


def _backend(uri: str):
    """The module serving ``gs://`` or ``az://`` (same functions as this one's S3 code), or None."""
    uri = normalize(uri)
    if uri.startswith("gs://"):
        from vscan.inputs import objectstore_gcs

        return objectstore_gcs
    if uri.startswith("az://"):
        from vscan.inputs import objectstore_azure

        return objectstore_azure
    return None


def _is_http(uri: str) -> bool:
    return normalize(uri).startswith(("http://", "https://"))


def _http(url: str, method: str = "GET"):
    """An open response to ``method url``, after retries (HTTP_RETRY, dropped connections) with backoff."""
    import random
    import urllib.error
    import urllib.request

    attempts = max_attempts()
    for attempt in range(1, attempts + 1):
        try:
            return urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=60)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code in HTTP_ACCESS:
                raise FileAccessError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            if method == "HEAD" and exc.code in (405, 501):
                return None  # no HEAD here: the GET will tell
            if exc.code not in HTTP_RETRY or attempt == attempts:
                raise ObjectStoreError(f"{url}: HTTP {exc.code} {exc.reason} (after {attempt} attempts)") from None
            wait = float(exc.headers.get("Retry-After") or 0) if exc.headers else 0.0
        except (urllib.error.URLError, OSError) as exc:
            if attempt == attempts:
                raise ObjectStoreError(f"{url}: {exc} (after {attempt} attempts)") from None
            wait = 0.0
        time.sleep(max(wait, min(20.0, 0.1 * 2 ** attempt) * random.uniform(0.5, 1.0)))
    raise ObjectStoreError(f"{url}: no answer")


def _fetch_http(url: str, folder: Path) -> tuple[Path, dict[str, Any]]:
    from urllib.parse import unquote, urlsplit

    local = folder / (Path(unquote(urlsplit(url).path)).name or "object")
    response = _http(url)
    read = 0
    try:
        with response, open(local, "wb") as out:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                read += len(chunk)
    except OSError as exc:
        raise ObjectStoreError(f"{url}: the transfer broke off after {read} bytes: {exc}") from None
    length = response.headers.get("Content-Length")
    if length is not None and int(length) != read:
        raise ObjectStoreError(f"{url}: {read} of {length} bytes arrived")
    etag = (response.headers.get("ETag") or "").strip('"') or None
    return local, {"uri": url, "etag": etag, "version_id": None, "size_bytes": read, "bytes_read": read}
