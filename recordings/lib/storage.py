"""The archive: where recordings go after they leave the telephony server's disk.

This is the only module that touches boto3 or botocore, and it needs no Django. Everything else calls
`recordings.pipeline.target.get_target()` (built here by `target_for` from the configured storage) and
speaks the `ArchiveTarget` interface below, whose two implementations are

* `S3Target` — a bucket on Cloudflare R2 or AWS S3, configured through django-storages' `S3Storage`
  (`STORAGES["archive"]`). Uploads are one single-part PUT carrying a precomputed SHA-256 that the
  *server* checks on receipt (`x-amz-checksum-sha256`), made conditional with `If-None-Match: *` so an
  existing object is never overwritten. No multipart: a multipart upload cannot
  carry a whole-file SHA-256; a precomputed header, not an aws-chunked trailer, which R2 rejects.
* `FilesystemTarget` — a local folder (`FileSystemStorage`), the embedded default for demos and tests.

Contract shared by both:

* `put` never replaces an existing object. Same bytes already there → `already_present=True`;
  different bytes → a permanent `StorageError` for a person to resolve.
* `confirm` reads the checksum back from the target; "not found" is an answer (`found=False`),
  never an exception. Nothing may delete a local file unless `confirm(...).ok`.
* Every provider failure surfaces as `StorageError`, whose `permanent` flag says whether retrying the
  same object can ever help. Configuration and network faults are *not* permanent: they affect every
  object and heal once someone fixes them. Messages name the setting to check and never carry secrets.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal, Protocol
from urllib.parse import quote, unquote, urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from recordings.lib.hashing import hash_file

try:  # boto's C runtime: optional, PutObject goes through it when it is installed (see _CrtPut)
    from awscrt import auth as crt_auth
    from awscrt import http as crt_http
    from awscrt import io as crt_io
    from awscrt import s3 as crt_s3
    from awscrt.exceptions import AwsCrtError
except ImportError:  # pragma: no cover - awscrt is in requirements.lock
    crt_s3 = None

CHUNK = 1024 * 1024
# Single-part uploads only: above this size S3 and R2 refuse a single PUT (R2: 4.995 GiB).
MAX_SINGLE_PUT = 5 * 1024**3
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys per request.
# botocore sends every PutObject with "Expect: 100-continue" and holds the body back until the server
# answers "100 Continue": one more round trip per upload (a WAN round trip on R2 and S3) that only pays
# off when a large body would be refused. Bodies up to this size are sent straight away.
CONTINUE_ABOVE = 1024 * 1024

# How a copy was verified: the checksum the server verified on receipt and returned in its answer to the
# PUT, the checksum it returns on HEAD, or the bytes read back and hashed here.
Method = Literal["put-checksum", "server-checksum", "rehash"]


# --- results and errors -------------------------------------------------------------------------


class StorageError(Exception):
    """A failure of the archive target, worded for an operator.

    `permanent` is True only when retrying this object cannot succeed without a person (for example the
    key already holds different content). Credentials, network and server faults are not permanent.
    """

    def __init__(self, message: str, *, permanent: bool, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256_hex: str
    version_id: str = ""
    already_present: bool = False
    # The SHA-256 the server returned in its answer to the PUT: it checked the bytes against the
    # x-amz-checksum-sha256 we sent before storing them. Empty when it returned none.
    server_sha256_hex: str = ""


@dataclass(frozen=True)
class Confirmation:
    """What the target says it holds under a key, compared with what we expect."""

    ok: bool
    found: bool
    size: int
    sha256_hex: str
    version_id: str
    method: Method
    detail: str = ""


@dataclass(frozen=True)
class DeleteFailure:
    key: str
    version_id: str
    code: str
    message: str


@dataclass
class DeleteResult:
    deleted: list[tuple[str, str]] = field(default_factory=list)
    failed: list[DeleteFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class ArchiveTarget(Protocol):
    def put(
        self,
        key: str,
        path: Path,
        *,
        sha256_hex: str,
        size: int,
        metadata: dict[str, str],
        content_type: str,
        storage_class: str = "",
    ) -> StoredObject: ...

    def change_class(
        self, key: str, version_id: str, *, storage_class: str, sha256_hex: str, size: int
    ) -> StoredObject: ...

    def confirm(self, key: str, *, sha256_hex: str, size: int, version_id: str = "") -> Confirmation: ...

    def delete(self, objects: Iterable[tuple[str, str]]) -> DeleteResult: ...

    def presigned_url(self, key: str, *, expires: int) -> str | None: ...

    def iter_object(self, key: str, version_id: str = "", *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The object's bytes from `start` to `end` (inclusive, as in HTTP ranges; None: to the end)."""
        ...

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> bool: ...

    def legal_hold_status(self, key: str, version_id: str) -> bool | None: ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]: ...

    def versions(self, key: str) -> list[tuple[str, str]]: ...

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, retain_until: datetime | None = None
    ) -> tuple[StoredObject, datetime | None]: ...


class UnsupportedStorage(TypeError):
    """STORAGES["archive"] names a backend vicirec cannot archive to."""


def target_for(storage: Any) -> ArchiveTarget:
    """The target for a configured storage: django-storages' ``S3Storage`` (it carries a boto3 client and
    a bucket name) or Django's ``FileSystemStorage`` (a folder). Told apart by what they carry, so this
    module needs no Django import."""
    if hasattr(storage, "bucket_name") and hasattr(storage, "connection"):
        return S3Target(storage.connection.meta.client, storage.bucket_name)
    if type(storage).__name__ == "FileSystemStorage" and getattr(storage, "location", None):
        return FilesystemTarget(Path(storage.location))
    raise UnsupportedStorage(
        f'STORAGES["archive"] uses {type(storage).__name__}; vicirec supports '
        "storages.backends.s3.S3Storage (R2, S3) and django.core.files.storage.FileSystemStorage."
    )


# --- keys ---------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _segment(value: str, *, limit: int) -> str:
    """One path segment: letters, digits, '.', '_' and '-', never starting with '.' (no '..', no dotfiles)."""
    return _UNSAFE.sub("_", value.strip()).lstrip(".")[:limit]


def object_key(*, campaign_id: str, start_time: datetime, filename: str, ext: str) -> str:
    """`<campaign or _unassigned>/<yyyy>/<mm>/<dd>/<filename>.<ext>`, stable for a recording's life.

    The date is taken from `start_time` as given (pass the call's local start time, as VICIdial shows it).
    """
    campaign = _segment(campaign_id, limit=64) or "_unassigned"
    name = _segment(filename, limit=200)
    suffix = re.sub(r"[^a-z0-9]", "", ext.lower())[:10]
    if not name or not suffix:
        raise ValueError(f"cannot build an archive key from filename={filename!r} ext={ext!r}")
    return f"{campaign}/{start_time:%Y/%m/%d}/{name}.{suffix}"


# --- helpers ------------------------------------------------------------------------------------


def _b64_from_hex(sha256_hex: str) -> str:
    try:
        raw = bytes.fromhex(sha256_hex)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"not a SHA-256 hex digest: {sha256_hex!r}")
    return base64.b64encode(raw).decode("ascii")


def _hex_from_b64(value: str) -> str:
    """Hex of a base64 SHA-256, or "" for anything else (e.g. a composite "…-N" multipart checksum)."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ""
    return raw.hex() if len(raw) == 32 else ""


# Printable ASCII passes through metadata values unchanged; everything else is percent-encoded.
_METADATA_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def _metadata(metadata: dict[str, str]) -> dict[str, str]:
    """User metadata that survives HTTP headers: lower-case token keys, printable ASCII values.

    Non-ASCII, control characters and '%' are percent-encoded (UTF-8), so values stay recoverable.
    """
    clean: dict[str, str] = {}
    for key, value in metadata.items():
        name = re.sub(r"[^a-z0-9-]+", "-", key.lower()).strip("-")
        if name:
            clean[name] = quote(str(value), safe=_METADATA_SAFE)[:1024]
    return clean


def _compare(expected_hex: str, expected_size: int, actual_hex: str, actual_size: int, where: str) -> str:
    """An empty string when they match, else a sentence saying what differs."""
    problems = []
    if actual_size != expected_size:
        problems.append(f"size is {actual_size} bytes, expected {expected_size}")
    if actual_hex.lower() != expected_hex.lower():
        problems.append(f"SHA-256 is {actual_hex}, expected {expected_hex}")
    return f"{where}: " + "; ".join(problems) if problems else ""


def _conflict(key: str, detail: str) -> StorageError:
    return StorageError(
        f"archive key {key} already holds different content ({detail}); it was not overwritten. "
        "A person must resolve this (compare both copies) before this recording can be archived.",
        permanent=True,
        code="KeyConflict",
    )


def _version(version_id: str) -> dict[str, str]:
    return {"VersionId": version_id} if version_id else {}


def _client_error_code(exc: ClientError) -> tuple[str, int]:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status or 0)


_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidSecurity"}
_DIGEST = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"}


@dataclass(frozen=True)
class _ErrorRule:
    """One kind of provider answer: the error codes (and optionally an HTTP status, whatever the code) it
    covers, whether retrying the same object can help, and the operator's sentence.

    The template is filled with ``action``, ``bucket``, ``code``, ``code_or_status`` (the code, or the HTTP
    status when the answer carried no code) and ``message`` (the provider's own, cut to 200 characters).
    """

    codes: frozenset[str]
    status: int | None
    permanent: bool
    template: str


# Checked in order; the first rule that matches wins, so the order is part of the contract (a 401 is a
# credentials problem whatever its code; a 403 is a permission problem unless a rule above claimed it).
_CLIENT_ERROR_RULES: tuple[_ErrorRule, ...] = (
    _ErrorRule(
        frozenset(_DIGEST),
        None,
        False,
        "server rejected the upload: checksum mismatch ({code}) — the bytes it received do not match "
        "the SHA-256 we sent, so nothing was stored ({action}). The next run retries; if it keeps "
        "happening the local file is changing or the network path corrupts data.",
    ),
    _ErrorRule(
        frozenset(_CREDENTIALS),
        401,
        False,
        "the bucket rejected the credentials ({code_or_status}) while trying to {action}: check "
        "VICIREC_S3_ACCESS_KEY_ID / VICIREC_S3_SECRET_ACCESS_KEY.",
    ),
    _ErrorRule(
        frozenset({"NoSuchBucket"}),
        None,
        False,
        "bucket {bucket!r} does not exist at this endpoint ({action}): check VICIREC_S3_BUCKET and "
        "VICIREC_S3_ENDPOINT_URL / VICIREC_S3_REGION.",
    ),
    # A HEAD response has no body, so S3 cannot say whether the signature or the permission failed.
    _ErrorRule(
        frozenset({"403"}),
        None,
        False,
        "the bucket refused to let us {action} (403 Forbidden): check VICIREC_S3_ACCESS_KEY_ID / "
        "VICIREC_S3_SECRET_ACCESS_KEY and the key's permissions on bucket {bucket!r}.",
    ),
    _ErrorRule(
        frozenset({"AccessDenied", "AllAccessDisabled"}),
        403,
        False,
        "the bucket denied permission to {action} ({code_or_status}: {message}): check the access key's "
        "permissions on bucket {bucket!r}.",
    ),
    _ErrorRule(
        frozenset({"AuthorizationHeaderMalformed", "AuthorizationQueryParametersError", "PermanentRedirect"}),
        None,
        False,
        "the bucket answered {code} while trying to {action}: check VICIREC_S3_REGION and VICIREC_S3_ENDPOINT_URL.",
    ),
    _ErrorRule(
        frozenset({"EntityTooLarge"}),
        None,
        True,
        "the object is too large for a single upload ({action}); recordings above 5 GiB are not supported.",
    ),
)


def _storage_error(exc: Exception, *, action: str, bucket: str) -> StorageError:
    """Translate a boto3/botocore exception into a sentence an operator can act on."""
    if isinstance(exc, ClientError):
        return _client_storage_error(exc, action=action, bucket=bucket)
    return _transport_storage_error(exc, action=action)


def _client_storage_error(exc: ClientError, *, action: str, bucket: str) -> StorageError:
    """The provider answered with an error: the first matching rule's sentence, else a generic one."""
    code, status = _client_error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))[:200]
    for rule in _CLIENT_ERROR_RULES:
        if code in rule.codes or (rule.status is not None and status == rule.status):
            text = rule.template.format(
                action=action, bucket=bucket, code=code, code_or_status=code or status, message=message
            )
            return StorageError(text, permanent=rule.permanent, code=code)
    return StorageError(
        f"storage request failed while trying to {action}: {code or status} {message}".rstrip(),
        permanent=False,
        code=code,
    )


def _transport_storage_error(exc: Exception, *, action: str) -> StorageError:
    """No answer from the provider: missing credentials, the network, or another client-side failure."""
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return StorageError(
            f"no usable storage credentials while trying to {action}: set VICIREC_S3_ACCESS_KEY_ID and "
            "VICIREC_S3_SECRET_ACCESS_KEY (or provide credentials through boto3's standard chain).",
            permanent=False,
            code="NoCredentials",
        )
    # Every network-level failure: refused or timed-out connects, read timeouts, a connection closed before
    # the answer (ConnectionClosedError), TLS errors.
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return StorageError(
            f"could not reach the storage endpoint while trying to {action} ({type(exc).__name__}): check "
            "VICIREC_S3_ENDPOINT_URL and the network; the next run retries.",
            permanent=False,
            code=type(exc).__name__,
        )
    return StorageError(
        f"storage client error while trying to {action}: {type(exc).__name__}", permanent=False, code=type(exc).__name__
    )


# --- S3 / R2 ------------------------------------------------------------------------------------


def _no_continue_for_small_puts(model: Any, params: dict[str, Any], **kwargs: Any) -> None:
    """Drop "Expect: 100-continue" from a PutObject whose body is at most CONTINUE_ABOVE bytes."""
    headers = params.get("headers", {})
    if model.name == "PutObject" and int(headers.get("Content-Length", CONTINUE_ABOVE + 1)) <= CONTINUE_ABOVE:
        headers.pop("Expect", None)


def _check_uploadable(path: Path, size: int) -> None:
    """Refuse a file that changed since it was hashed, or that no single PUT can carry."""
    try:
        actual_size = path.stat().st_size
    except OSError as exc:
        raise StorageError(f"cannot read {path} ({exc.strerror})", permanent=False, code="OSError") from exc
    if actual_size != size:
        raise StorageError(
            f"{path} is {actual_size} bytes but the catalog says {size}; not uploading a file that changed "
            "after it was hashed. The next run retries.",
            permanent=False,
            code="SizeMismatch",
        )
    if size > MAX_SINGLE_PUT:
        raise StorageError(
            f"{path} is {size} bytes, above the 5 GiB single-upload limit; it cannot be archived with a "
            "server-verified SHA-256.",
            permanent=True,
            code="EntityTooLarge",
        )


# PutObject bodies up to this size go through awscrt (read whole into memory, which its single-request
# upload does anyway); larger ones stream through botocore. Recordings are far smaller (an hour of Opus at
# 12 kbps is 5.4 MB), so this bounds each upload thread's memory without changing which path they take.
CRT_MAX_BODY = 16 * 1024 * 1024
CRT_MIN_RATE = 100 * 1024  # bytes/s: the slowest upload still waited for (see _CrtPut.per_attempt_s)


# Errors awscrt reports by name, not as an S3ResponseError, once its retries of them ran out.
_CRT_ANSWERS = {
    "AWS_ERROR_S3_INTERNAL_ERROR": ("InternalError", 500),
    "AWS_ERROR_S3_SLOW_DOWN": ("SlowDown", 503),
    "AWS_ERROR_S3_REQUEST_TIME_TOO_SKEWED": ("RequestTimeTooSkewed", 403),
}


class _CrtPut:
    """PutObject through awscrt's S3 client: the request is signed, sent, retried and its answer read in C,
    off the GIL, where botocore spends about 1 ms of GIL-held Python per request (parameter validation,
    ~30 event hooks, endpoint rules, SigV4, urllib3, http.client). Same request as S3Target.put sends
    through botocore: the precomputed ``x-amz-checksum-sha256`` the server verifies, ``If-None-Match: *``,
    the metadata and storage class; the URL (path- or virtual-hosted style), region and credentials are
    the boto3 client's own, so one configuration drives both."""

    def __init__(self, client: Any, bucket: str) -> None:
        # Where botocore would send a PutObject of this bucket (its endpoint rules, once): host and prefix.
        probe = "vicirec-probe"
        url = urlsplit(client.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": probe}))
        if not url.path.endswith("/" + probe) or url.scheme not in ("http", "https"):
            raise ValueError(f"unexpected PutObject URL shape {url.scheme}://{url.netloc}{url.path}")
        self.host, self.prefix = url.netloc, unquote(url.path[: -len(probe)])
        credentials = client._request_signer._credentials  # botocore's refreshing credentials (role, env, keys)
        if credentials is None:
            raise ValueError("no credentials")

        def current() -> Any:
            frozen = credentials.get_frozen_credentials()
            return crt_auth.AwsCredentials(frozen.access_key, frozen.secret_key, frozen.token)

        self.signing = crt_s3.create_default_s3_signing_config(
            region=client.meta.region_name, credential_provider=crt_auth.AwsCredentialsProvider.new_delegate(current)
        )
        # as many requests as botocore would make ("total_max_attempts": the first and its retries)
        attempts = int((client.meta.config.retries or {}).get("total_max_attempts", 5))
        # awscrt has no read timeout: a request whose connection stalls is given up after what botocore's
        # connect and read timeouts would allow every attempt, plus its body at CRT_MIN_RATE
        self.per_attempt_s = float(client.meta.config.connect_timeout or 60) + float(
            client.meta.config.read_timeout or 60
        )
        self.attempts = attempts
        self.endpoint_url = client.meta.endpoint_url
        self.client = crt_s3.S3Client(
            bootstrap=crt_io.ClientBootstrap.get_or_create_static_default(),
            region=client.meta.region_name,
            tls_mode=crt_s3.S3RequestTlsMode.ENABLED if url.scheme == "https" else crt_s3.S3RequestTlsMode.DISABLED,
            signing_config=self.signing,
            retry_config=crt_s3.S3RetryConfig(max_retries=max(attempts - 1, 0)),
            connect_timeout_ms=int((client.meta.config.connect_timeout or 60) * 1000),
        )

    def put(self, key: str, body: bytes, headers: list[tuple[str, str]], sha256_hex: str) -> dict[str, str]:
        """Send one PUT; the answer's headers (lower-case names). Raises ClientError for an error answer
        (the same rules as botocore's then apply) and ConnectionError when no answer came."""
        request = crt_http.HttpRequest(
            "PUT",
            quote(self.prefix + key, safe="/~"),
            crt_http.HttpHeaders([("Host", self.host), ("Content-Length", str(len(body))), *headers]),
            io.BytesIO(body),
        )
        answer: dict[str, str] = {}

        def on_headers(status_code: int, headers: list[tuple[str, str]], **kwargs: Any) -> None:
            answer.update((name.lower(), value) for name, value in headers)

        deadline = self.attempts * (self.per_attempt_s + len(body) / CRT_MIN_RATE)
        try:
            sent = self.client.make_request(
                type=crt_s3.S3RequestType.DEFAULT,  # one request as given: no multipart, no checksum of its own
                operation_name="PutObject",
                request=request,
                # the payload's SHA-256 is the one we send anyway: signed as is, not computed again
                signing_config=self.signing.replace(signed_body_value=sha256_hex),
                on_headers=on_headers,
            )
            try:
                sent.finished_future.result(timeout=deadline)
            except FutureTimeout:
                sent.cancel()
                raise ReadTimeoutError(endpoint_url=self.endpoint_url) from None
        except crt_s3.S3ResponseError as exc:
            text = exc.body.decode("utf-8", "replace") if exc.body else ""
            code = re.search(r"<Code>([^<]*)</Code>", text)
            message = re.search(r"<Message>([^<]*)</Message>", text)
            error = {"Code": code[1] if code else str(exc.status_code), "Message": message[1] if message else ""}
            response = {"Error": error, "ResponseMetadata": {"HTTPStatusCode": exc.status_code}}
            raise ClientError(response, "PutObject") from exc  # type: ignore[arg-type]
        except AwsCrtError as exc:
            if exc.name in _CRT_ANSWERS:  # the server answered this, every time, until the retries ran out
                code, status = _CRT_ANSWERS[exc.name]
                response = {
                    "Error": {"Code": code, "Message": exc.message},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                }
                raise ClientError(response, "PutObject") from exc  # type: ignore[arg-type]
            raise BotoConnectionError(error=exc.name) from exc
        return answer


class S3Target:
    """A bucket on R2 or S3, driven through the boto3 client that django-storages configured."""

    def __init__(self, client: Any, bucket: str, *, crt: bool | None = None) -> None:
        """``crt``: PutObject through awscrt (_CrtPut) when it is installed; None: unless VICIREC_S3_CRT=0."""
        self.client = client
        self.bucket = bucket
        # Last, after botocore's own handler has added the header (registering again is a no-op).
        client.meta.events.register_last("before-call.s3", _no_continue_for_small_puts, unique_id="vicirec-continue")
        if crt is None:
            crt = os.environ.get("VICIREC_S3_CRT", "1") != "0"
        self._crt: _CrtPut | None = None
        if crt and crt_s3 is not None:
            try:
                self._crt = _CrtPut(client, bucket)
            except (ValueError, AttributeError, AwsCrtError, BotoCoreError):
                self._crt = None  # botocore alone, as without awscrt

    def _open_body(self, path: Path) -> IO[bytes]:
        # The seam where tests inject corruption in flight; botocore streams (and re-seeks on retry).
        return path.open("rb")

    def put(
        self,
        key: str,
        path: Path,
        *,
        sha256_hex: str,
        size: int,
        metadata: dict[str, str],
        content_type: str,
        storage_class: str = "",
    ) -> StoredObject:
        """Upload once; ``storage_class`` (STANDARD, STANDARD_IA, GLACIER_IR) is sent as ``StorageClass``,
        "" leaves the bucket's default."""
        checksum = _b64_from_hex(sha256_hex)
        extra = {"StorageClass": storage_class} if storage_class else {}
        _check_uploadable(path, size)
        try:
            if self._crt is not None and size <= CRT_MAX_BODY:
                response = self._put_crt(
                    key,
                    path,
                    size=size,
                    checksum=checksum,
                    sha256_hex=sha256_hex,
                    metadata=metadata,
                    content_type=content_type,
                    storage_class=storage_class,
                )
            else:
                response = self._put_botocore(
                    key, path, size=size, checksum=checksum, metadata=metadata, content_type=content_type, extra=extra
                )
        except ClientError as exc:
            code, status = _client_error_code(exc)
            if status != 412 and code != "PreconditionFailed":
                raise _storage_error(exc, action=f"upload {key}", bucket=self.bucket) from exc
            return self._existing(key, sha256_hex=sha256_hex, size=size)
        except BotoCoreError as exc:
            raise _storage_error(exc, action=f"upload {key}", bucket=self.bucket) from exc
        except OSError as exc:
            raise StorageError(f"cannot read {path} ({exc.strerror})", permanent=False, code="OSError") from exc
        return StoredObject(
            key=key,
            size=size,
            sha256_hex=sha256_hex,
            version_id=response.get("VersionId") or "",
            server_sha256_hex=_hex_from_b64(response.get("ChecksumSHA256") or ""),
        )

    def _put_botocore(
        self,
        key: str,
        path: Path,
        *,
        size: int,
        checksum: str,
        metadata: dict[str, str],
        content_type: str,
        extra: dict[str, str],
    ) -> dict[str, Any]:
        with self._open_body(path) as body:
            return self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
                Metadata=_metadata(metadata),
                ContentType=content_type,
                IfNoneMatch="*",
                **extra,
            )

    def _put_crt(
        self,
        key: str,
        path: Path,
        *,
        size: int,
        checksum: str,
        sha256_hex: str,
        metadata: dict[str, str],
        content_type: str,
        storage_class: str,
    ) -> dict[str, Any]:
        """The same request through awscrt; its answer in the shape botocore's put_object returns."""
        assert self._crt is not None
        with self._open_body(path) as body:
            data = body.read(size)  # the bytes that were hashed, as botocore's ContentLength sends them
        headers = [
            ("Content-Type", content_type),
            ("x-amz-checksum-sha256", checksum),
            ("x-amz-sdk-checksum-algorithm", "SHA256"),
            ("If-None-Match", "*"),
            *((f"x-amz-meta-{name}", value) for name, value in _metadata(metadata).items()),
            *((("x-amz-storage-class", storage_class),) if storage_class else ()),
        ]
        answer = self._crt.put(key, data, headers, sha256_hex)
        return {
            "VersionId": answer.get("x-amz-version-id", ""),
            "ChecksumSHA256": answer.get("x-amz-checksum-sha256", ""),
        }

    def _existing(self, key: str, *, sha256_hex: str, size: int) -> StoredObject:
        """The key was taken (412): identical content counts as stored, anything else is a conflict."""
        found = self.confirm(key, sha256_hex=sha256_hex, size=size)
        if found.ok:
            return StoredObject(key, size, sha256_hex, version_id=found.version_id, already_present=True)
        if not found.found:
            raise StorageError(
                f"archive key {key} was reported as existing but then could not be read; the next run retries.",
                permanent=False,
                code="PreconditionFailed",
            )
        raise _conflict(key, found.detail)

    def confirm(self, key: str, *, sha256_hex: str, size: int, version_id: str = "") -> Confirmation:
        extra = {"VersionId": version_id} if version_id else {}
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED", **extra)
        except ClientError as exc:
            code, status = _client_error_code(exc)
            if code in _NOT_FOUND or status == 404:
                return Confirmation(
                    ok=False,
                    found=False,
                    size=0,
                    sha256_hex="",
                    version_id=version_id,
                    method="server-checksum",
                    detail=f"{key} is not in bucket {self.bucket}",
                )
            raise _storage_error(exc, action=f"read back {key}", bucket=self.bucket) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc, action=f"read back {key}", bucket=self.bucket) from exc
        found_version = head.get("VersionId") or version_id
        remote_hex = _hex_from_b64(head.get("ChecksumSHA256") or "")
        remote_size = int(head.get("ContentLength", -1))
        method: Method = "server-checksum"
        if not remote_hex:
            # R2 may not return the stored SHA-256 on HEAD: read the bytes back and hash them ourselves.
            remote_hex, remote_size = self._rehash(key, found_version)
            method = "rehash"
        detail = _compare(sha256_hex, size, remote_hex, remote_size, f"bucket {self.bucket} key {key}")
        return Confirmation(
            ok=not detail,
            found=True,
            size=remote_size,
            sha256_hex=remote_hex,
            version_id=found_version,
            method=method,
            detail=detail,
        )

    def change_class(
        self, key: str, version_id: str, *, storage_class: str, sha256_hex: str, size: int
    ) -> StoredObject:
        """Copy the object onto its own key in ``storage_class``, server-side, and verify the new copy.

        The copy keeps the SHA-256 (the server recomputes it over the copied bytes and we compare it with
        ours), the user metadata and the content type. In a versioned bucket the copy is a new version and
        the old one stays until the caller deletes it (``delete``); unversioned, the object is replaced in
        place. A copy that does not confirm is a StorageError and the caller keeps the old version.
        """
        source = {"Bucket": self.bucket, "Key": key, **({"VersionId": version_id} if version_id else {})}
        action = f"move {key} to {storage_class}"
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, **_version(version_id))
            # REPLACE with the object's own metadata: a copy onto itself must change something the server
            # recognises, and some servers do not count the storage class alone.
            response = self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource=source,
                StorageClass=storage_class,
                MetadataDirective="REPLACE",
                Metadata=head.get("Metadata", {}),
                ContentType=head.get("ContentType") or "application/octet-stream",
                ChecksumAlgorithm="SHA256",
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, action=action, bucket=self.bucket) from exc
        new_version = response.get("VersionId") or ""
        found = self.confirm(key, sha256_hex=sha256_hex, size=size, version_id=new_version)
        if not found.ok:
            raise StorageError(
                f"the copy of {key} in {storage_class} does not match: {found.detail or 'not found'}; the old "
                "version is kept.",
                permanent=False,
                code="CopyMismatch",
            )
        return StoredObject(key, size, sha256_hex, version_id=new_version, server_sha256_hex=found.sha256_hex)

    def storage_class_of(self, key: str, version_id: str = "") -> str:
        """The class the server reports for the object (S3 omits it on HEAD for STANDARD)."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key, **_version(version_id))
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, action=f"read the storage class of {key}", bucket=self.bucket) from exc
        return str(head.get("StorageClass") or "STANDARD")

    def iter_object(self, key: str, version_id: str = "", *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Stream the object's bytes as the server sends them (never held whole in memory); a part of it
        (`start`..`end`, inclusive) is one ranged GET, so the server sends only those bytes."""
        extra: dict[str, str] = {"VersionId": version_id} if version_id else {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, action=f"download {key}", bucket=self.bucket) from exc

    def _rehash(self, key: str, version_id: str = "") -> tuple[str, int]:
        """Stream the object and return (sha256 hex, byte count) of what the server sends."""
        digest = hashlib.sha256()
        count = 0
        for chunk in self.iter_object(key, version_id):
            digest.update(chunk)
            count += len(chunk)
        return digest.hexdigest(), count

    def delete(self, objects: Iterable[tuple[str, str]]) -> DeleteResult:
        """Delete exact versions when known (a key-only delete in a versioned bucket only adds a marker)."""
        result = DeleteResult()
        pending = list(objects)
        for start in range(0, len(pending), DELETE_BATCH):
            batch = pending[start : start + DELETE_BATCH]
            entries = [{"Key": key, "VersionId": version} if version else {"Key": key} for key, version in batch]
            try:
                response = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": entries, "Quiet": True})
            except (ClientError, BotoCoreError) as exc:
                raise _storage_error(exc, action=f"delete {len(batch)} objects", bucket=self.bucket) from exc
            errors = {(e.get("Key", ""), e.get("VersionId") or ""): e for e in response.get("Errors", [])}
            for key, version in batch:
                error = errors.get((key, version)) or (errors.get((key, "")) if version else None)
                if error is None:
                    result.deleted.append((key, version))
                else:
                    result.failed.append(
                        DeleteFailure(key, version, str(error.get("Code", "")), str(error.get("Message", "")))
                    )
        return result

    def presigned_url(self, key: str, *, expires: int) -> str | None:
        try:
            url: str = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
            )
        except BotoCoreError as exc:
            raise _storage_error(exc, action=f"sign a download link for {key}", bucket=self.bucket) from exc
        return url

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> bool:
        """Place or lift an S3 Object Lock legal hold; False when the bucket/provider has no Object Lock."""
        extra = {"VersionId": version_id} if version_id else {}
        try:
            self.client.put_object_legal_hold(
                Bucket=self.bucket, Key=key, LegalHold={"Status": "ON" if on else "OFF"}, **extra
            )
        except ClientError as exc:
            code, status = _client_error_code(exc)
            if code in {"NotImplemented", "InvalidRequest", "ObjectLockConfigurationNotFoundError"} or status == 501:
                return False
            raise _storage_error(exc, action=f"set the legal hold on {key}", bucket=self.bucket) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc, action=f"set the legal hold on {key}", bucket=self.bucket) from exc
        return True

    def legal_hold_status(self, key: str, version_id: str) -> bool | None:
        """Whether the object's legal hold is on; None when the bucket/provider has no Object Lock."""
        extra = {"VersionId": version_id} if version_id else {}
        try:
            answer = self.client.get_object_legal_hold(Bucket=self.bucket, Key=key, **extra)
        except ClientError as exc:
            code, status = _client_error_code(exc)
            if code in {"NotImplemented", "InvalidRequest", "ObjectLockConfigurationNotFoundError"} or status == 501:
                return None
            if code in {"NoSuchObjectLockConfiguration", "NoSuchObjectLegalHold"}:
                return False
            raise _storage_error(exc, action=f"read the legal hold of {key}", bucket=self.bucket) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc, action=f"read the legal hold of {key}", bucket=self.bucket) from exc
        return answer.get("LegalHold", {}).get("Status") == "ON"

    def versions(self, key: str) -> list[tuple[str, str]]:
        """Every version and delete marker stored under exactly ``key`` (an erasure deletes them all); in
        an unversioned bucket, or where listing versions is not supported (R2), the key itself if present."""
        found: list[tuple[str, str]] = []
        try:
            paginator = self.client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
                for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                    if item.get("Key") == key:
                        version = item.get("VersionId") or ""
                        found.append((key, "" if version == "null" else version))
        except ClientError as exc:
            code, status = _client_error_code(exc)
            if code not in {"NotImplemented", "InvalidRequest"} and status != 501:
                raise _storage_error(exc, action=f"list the versions of {key}", bucket=self.bucket) from exc
            try:
                self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as missing:
                code, status = _client_error_code(missing)
                if code in _NOT_FOUND or status == 404:
                    return []
                raise _storage_error(missing, action=f"read {key}", bucket=self.bucket) from missing
            found = [(key, "")]
        except BotoCoreError as exc:
            raise _storage_error(exc, action=f"list the versions of {key}", bucket=self.bucket) from exc
        return sorted(set(found))

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has S3 Object Lock (R2 and buckets made without it answer no)."""
        try:
            answer = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except (ClientError, BotoCoreError):
            return False
        return answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, retain_until: datetime | None = None
    ) -> tuple[StoredObject, datetime | None]:
        """A small object of its own (a custody checkpoint), never replacing one, with a server-verified
        SHA-256 and, where the bucket has Object Lock, a COMPLIANCE retention until ``retain_until``.
        Returns the stored object and the retention date actually set (None without Object Lock)."""
        digest = hashlib.sha256(data).hexdigest()
        lock = retain_until if retain_until is not None and self.object_lock_enabled() else None
        extra: dict[str, Any] = {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": lock} if lock else {}
        try:
            response = self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ChecksumSHA256=_b64_from_hex(digest),
                ContentType=content_type,
                IfNoneMatch="*",
                **extra,
            )
        except ClientError as exc:
            code, status = _client_error_code(exc)
            if status != 412 and code != "PreconditionFailed":
                raise _storage_error(exc, action=f"write {key}", bucket=self.bucket) from exc
            return self._existing(key, sha256_hex=digest, size=len(data)), None
        except BotoCoreError as exc:
            raise _storage_error(exc, action=f"write {key}", bucket=self.bucket) from exc
        stored = StoredObject(key, len(data), digest, version_id=response.get("VersionId") or "")
        return stored, lock

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, action=f"list keys under {prefix!r}", bucket=self.bucket) from exc


# --- local folder -------------------------------------------------------------------------------


class FilesystemTarget:
    """A local folder standing in for the bucket. Objects are published atomically and never replaced.

    Hidden names (a leading '.') are in-progress uploads and are never listed as keys.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = PurePosixPath(key).parts
        if not parts or key.startswith("/") or any(p in {"", ".", ".."} or p.startswith(".") for p in parts):
            raise ValueError(f"unsafe archive key: {key!r}")
        return self.root.joinpath(*parts)

    def put(
        self,
        key: str,
        path: Path,
        *,
        sha256_hex: str,
        size: int,
        metadata: dict[str, str],
        content_type: str,
        storage_class: str = "",
    ) -> StoredObject:
        """``storage_class`` is accepted and ignored: a folder has one class (the catalog still records it)."""
        _b64_from_hex(sha256_hex)  # validates the digest
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-", suffix=".tmp")
        except OSError as exc:
            raise StorageError(
                f"cannot write to the archive folder {self.root} ({exc.strerror}): check VICIREC_ARCHIVE_DIR "
                "and its permissions.",
                permanent=False,
                code="OSError",
            ) from exc
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            written = 0
            with os.fdopen(fd, "wb") as out, path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            detail = _compare(sha256_hex, size, digest.hexdigest(), written, f"copy of {path}")
            if detail:
                raise StorageError(
                    f"checksum mismatch while archiving {key}: {detail}; nothing was stored. The local file "
                    "changed or is unreadable; the next run retries.",
                    permanent=False,
                    code="BadDigest",
                )
            try:
                os.link(tmp, target)  # publish without overwrite: fails if the key exists
            except FileExistsError:
                existing = self.confirm(key, sha256_hex=sha256_hex, size=size)
                if existing.ok:
                    return StoredObject(key, size, sha256_hex, already_present=True)
                raise _conflict(key, existing.detail) from None
            _fsync_dir(target.parent)
            return StoredObject(key, size, sha256_hex)
        except OSError as exc:
            raise StorageError(
                f"writing {key} to the archive folder {self.root} failed ({exc.strerror}); the next run retries.",
                permanent=False,
                code="OSError",
            ) from exc
        finally:
            tmp.unlink(missing_ok=True)

    def confirm(self, key: str, *, sha256_hex: str, size: int, version_id: str = "") -> Confirmation:
        path = self._path(key)
        try:
            actual_hex, actual_size = hash_file(path)
        except FileNotFoundError:
            return Confirmation(
                ok=False,
                found=False,
                size=0,
                sha256_hex="",
                version_id="",
                method="rehash",
                detail=f"{key} is not in {self.root}",
            )
        except OSError as exc:
            raise StorageError(
                f"cannot read {path} ({exc.strerror}); check the archive folder's permissions.",
                permanent=False,
                code="OSError",
            ) from exc
        detail = _compare(sha256_hex, size, actual_hex, actual_size, f"{self.root} key {key}")
        return Confirmation(
            ok=not detail,
            found=True,
            size=actual_size,
            sha256_hex=actual_hex,
            version_id="",
            method="rehash",
            detail=detail,
        )

    def delete(self, objects: Iterable[tuple[str, str]]) -> DeleteResult:
        result = DeleteResult()
        for key, version in objects:
            try:
                self._path(key).unlink(missing_ok=True)  # already gone counts as deleted, as on S3
            except (OSError, ValueError) as exc:
                result.failed.append(DeleteFailure(key, version, type(exc).__name__, str(exc)))
            else:
                result.deleted.append((key, version))
        return result

    def change_class(
        self, key: str, version_id: str, *, storage_class: str, sha256_hex: str, size: int
    ) -> StoredObject:
        """Nothing to move in a folder: confirm the object is intact and report it unchanged."""
        found = self.confirm(key, sha256_hex=sha256_hex, size=size)
        if not found.ok:
            raise StorageError(f"{key}: {found.detail}", permanent=False, code="CopyMismatch")
        return StoredObject(key, size, sha256_hex)

    def presigned_url(self, key: str, *, expires: int) -> str | None:
        return None

    def iter_object(self, key: str, version_id: str = "", *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            with self._path(key).open("rb") as handle:
                yield from iter_file(handle, start=start, end=end)
        except OSError as exc:
            raise StorageError(f"cannot read {key} from the archive folder: {exc.strerror}", permanent=False) from exc

    def set_legal_hold(self, key: str, version_id: str, on: bool) -> bool:
        return False

    def put_bytes(
        self, key: str, data: bytes, *, content_type: str, retain_until: datetime | None = None
    ) -> tuple[StoredObject, datetime | None]:
        """A small object of its own, published like an upload (never replacing one); a folder has no
        Object Lock, so no retention is set."""
        fd, name = tempfile.mkstemp(prefix="vicirec-object-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            digest = hashlib.sha256(data).hexdigest()
            stored = self.put(
                key, Path(name), sha256_hex=digest, size=len(data), metadata={}, content_type=content_type
            )
        finally:
            os.unlink(name)
        return stored, None

    def legal_hold_status(self, key: str, version_id: str) -> bool | None:
        return None

    def versions(self, key: str) -> list[tuple[str, str]]:
        try:
            return [(key, "")] if self._path(key).is_file() else []
        except ValueError:
            return []

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        if not self.root.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            base = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if not name.startswith("."):
                    key = (base / name).as_posix()
                    if key.startswith(prefix):
                        yield key


def iter_file(handle: IO[bytes], *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Chunks of an open file from `start` to `end` (inclusive; None: to the end), CHUNK bytes at most each."""
    handle.seek(start)
    left = None if end is None else max(end - start + 1, 0)
    while left is None or left > 0:
        chunk = handle.read(CHUNK if left is None else min(CHUNK, left))
        if not chunk:
            return
        if left is not None:
            left -= len(chunk)
        yield chunk


def _fsync_dir(directory: Path) -> None:
    """Make a new directory entry durable (a crash right after put must not lose the link)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
