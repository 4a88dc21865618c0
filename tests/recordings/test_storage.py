"""The archive interface against a real SeaweedFS (which verifies checksums) and a real local folder."""

from __future__ import annotations

import hashlib
import io
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.exceptions import ImproperlyConfigured

from recordings.lib import storage
from recordings.lib.storage import ArchiveTarget, FilesystemTarget, S3Target, StorageError, object_key
from recordings.pipeline.target import get_target
from tests.faults import FlipOneByte
from tests.s3_fixtures import s3_archive_storage
from tests.s3server import S3Server, free_ports, make_bucket
from vicirec.config import r2_endpoint, s3_storage_options

AUDIO = b"RIFF....WAVEfmt " + bytes(range(256)) * 64
OTHER = b"RIFF....WAVEfmt " + bytes(range(255, -1, -1)) * 64


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    def write(data: bytes = AUDIO, name: str = "call.wav") -> Path:
        path = tmp_path / "spool" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return write


def put(target: ArchiveTarget, key: str, path: Path, data: bytes, **overrides: Any) -> storage.StoredObject:
    params: dict[str, Any] = {
        "sha256_hex": sha256(data),
        "size": len(data),
        "metadata": {"recording-id": "1"},
        "content_type": "audio/wav",
        **overrides,
    }
    return target.put(key, path, **params)


@pytest.fixture
def archive_fs_settings(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "archive"
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": root}},
    }
    return root


@pytest.fixture(params=["s3", "filesystem"])
def target(request: pytest.FixtureRequest) -> ArchiveTarget:
    """Each contract test runs against SeaweedFS and against a local folder, both built from settings."""
    request.getfixturevalue("archive_s3_settings" if request.param == "s3" else "archive_fs_settings")
    return get_target()


@pytest.fixture
def s3_target(archive_s3_settings: str) -> S3Target:
    target = get_target()
    assert isinstance(target, S3Target)
    return target


# --- the contract, on both targets ----------------------------------------------------------------


def test_get_target_follows_the_archive_setting(target: ArchiveTarget, settings: Any) -> None:
    backend = settings.STORAGES["archive"]["BACKEND"]
    assert isinstance(target, S3Target if backend.endswith("S3Storage") else FilesystemTarget)


def test_put_then_confirm_reads_the_checksum_back(target: ArchiveTarget, write_file: Callable[..., Path]) -> None:
    stored = put(target, "c1/2026/11/24/call.wav", write_file(), AUDIO)

    assert stored.already_present is False
    assert (stored.key, stored.size, stored.sha256_hex) == ("c1/2026/11/24/call.wav", len(AUDIO), sha256(AUDIO))
    confirmation = target.confirm(stored.key, sha256_hex=sha256(AUDIO), size=len(AUDIO))
    assert confirmation.ok and confirmation.found
    assert (confirmation.size, confirmation.sha256_hex) == (len(AUDIO), sha256(AUDIO))
    assert confirmation.method == ("server-checksum" if isinstance(target, S3Target) else "rehash")


def test_confirm_reports_a_mismatch_in_words(target: ArchiveTarget, write_file: Callable[..., Path]) -> None:
    put(target, "c1/call.wav", write_file(), AUDIO)

    confirmation = target.confirm("c1/call.wav", sha256_hex=sha256(OTHER), size=len(AUDIO) + 1)

    assert confirmation.found and not confirmation.ok
    assert confirmation.sha256_hex == sha256(AUDIO)
    assert "SHA-256 is" in confirmation.detail and f"expected {len(AUDIO) + 1}" in confirmation.detail


def test_confirm_of_a_missing_key_is_an_answer_not_an_error(target: ArchiveTarget) -> None:
    confirmation = target.confirm("nowhere/call.wav", sha256_hex=sha256(AUDIO), size=len(AUDIO))

    assert (confirmation.ok, confirmation.found) == (False, False)


def test_wrong_checksum_is_refused_and_nothing_is_stored(
    target: ArchiveTarget, write_file: Callable[..., Path]
) -> None:
    # The file holds AUDIO but we claim the hash of OTHER: what a corrupted local read would look like.
    with pytest.raises(StorageError) as caught:
        put(target, "c1/call.wav", write_file(), AUDIO, sha256_hex=sha256(OTHER))

    assert caught.value.permanent is False
    assert "checksum mismatch" in str(caught.value)
    assert list(target.iter_keys()) == []


def test_identical_content_put_again_is_already_present(target: ArchiveTarget, write_file: Callable[..., Path]) -> None:
    first = put(target, "c1/call.wav", write_file(), AUDIO)
    again = put(target, "c1/call.wav", write_file(name="copy.wav"), AUDIO)

    assert again.already_present is True
    assert (again.key, again.size, again.sha256_hex, again.version_id) == (
        first.key,
        first.size,
        first.sha256_hex,
        first.version_id,
    )


def test_different_content_on_an_existing_key_is_permanent_and_keeps_the_original(
    target: ArchiveTarget, write_file: Callable[..., Path]
) -> None:
    put(target, "c1/call.wav", write_file(), AUDIO)

    with pytest.raises(StorageError) as caught:
        put(target, "c1/call.wav", write_file(OTHER, name="other.wav"), OTHER)

    assert caught.value.permanent is True
    assert "already holds different content" in str(caught.value) and "person" in str(caught.value)
    assert target.confirm("c1/call.wav", sha256_hex=sha256(AUDIO), size=len(AUDIO)).ok
    assert list(target.iter_keys()) == ["c1/call.wav"]


def test_a_file_that_changed_size_since_hashing_is_not_archived(
    target: ArchiveTarget, write_file: Callable[..., Path]
) -> None:
    path = write_file(AUDIO + b"more")

    with pytest.raises(StorageError) as caught:
        put(target, "c1/call.wav", path, AUDIO)

    assert caught.value.permanent is False
    assert list(target.iter_keys()) == []


def test_delete_removes_objects_and_reports_each(target: ArchiveTarget, write_file: Callable[..., Path]) -> None:
    stored = [put(target, f"c1/2026/11/24/call{i}.wav", write_file(), AUDIO) for i in range(3)]

    result = target.delete([(s.key, s.version_id) for s in stored[:2]])

    assert result.ok and result.deleted == [(s.key, s.version_id) for s in stored[:2]]
    assert list(target.iter_keys()) == ["c1/2026/11/24/call2.wav"]
    again = target.delete([(stored[0].key, "")])  # deleting what is already gone is not an error
    assert again.ok


def test_delete_works_in_batches(
    target: ArchiveTarget, write_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "DELETE_BATCH", 2)
    keys = [put(target, f"c1/call{i}.wav", write_file(), AUDIO).key for i in range(5)]

    result = target.delete([(key, "") for key in keys])

    assert result.ok and len(result.deleted) == 5
    assert list(target.iter_keys()) == []


def test_iter_keys_filters_by_prefix(target: ArchiveTarget, write_file: Callable[..., Path]) -> None:
    for key in ("a/1.wav", "a/2.wav", "b/1.wav"):
        put(target, key, write_file(), AUDIO)

    assert sorted(target.iter_keys("a/")) == ["a/1.wav", "a/2.wav"]
    assert sorted(target.iter_keys()) == ["a/1.wav", "a/2.wav", "b/1.wav"]


# --- S3 specifics (SeaweedFS) ---------------------------------------------------------------------


class CorruptingS3Target(S3Target):
    def _open_body(self, path: Path) -> io.FileIO:
        return FlipOneByte(path, "rb")


def test_bytes_corrupted_in_flight_are_refused_by_the_server(
    s3_target: S3Target, write_file: Callable[..., Path]
) -> None:
    corrupting = CorruptingS3Target(s3_target.client, s3_target.bucket)

    with pytest.raises(StorageError) as caught:
        put(corrupting, "c1/call.wav", write_file(), AUDIO)

    assert caught.value.permanent is False
    assert caught.value.code == "BadDigest"
    assert str(caught.value).startswith("server rejected the upload: checksum mismatch (BadDigest)")
    assert list(s3_target.iter_keys()) == []


def test_metadata_is_made_header_safe(s3_target: S3Target, write_file: Callable[..., Path]) -> None:
    put(s3_target, "c1/call.wav", write_file(), AUDIO, metadata={"Agent Name": "José\n", "lead_id": "42"})

    head = s3_target.client.head_object(Bucket=s3_target.bucket, Key="c1/call.wav")
    assert head["Metadata"] == {"agent-name": "Jos%C3%A9%0A", "lead-id": "42"}
    assert head["ContentType"] == "audio/wav"


def test_small_uploads_skip_the_100_continue_round_trip_and_large_ones_keep_it(
    s3_target: S3Target, write_file: Callable[..., Path]
) -> None:
    s3_target = S3Target(s3_target.client, s3_target.bucket, crt=False)  # botocore's PutObject
    sent: list[tuple[str, str | None]] = []

    def capture(request: Any, **kwargs: Any) -> None:
        expect = request.headers.get("Expect")
        sent.append((request.url.rsplit("/", 1)[1], expect.decode() if isinstance(expect, bytes) else expect))

    s3_target.client.meta.events.register("before-send.s3.PutObject", capture, unique_id="test-capture")
    try:
        small = AUDIO
        large = AUDIO + bytes(storage.CONTINUE_ABOVE)
        put(s3_target, "c1/small.wav", write_file(small, "small.wav"), small)
        put(s3_target, "c1/large.wav", write_file(large, "large.wav"), large)
    finally:
        s3_target.client.meta.events.unregister("before-send.s3.PutObject", unique_id="test-capture")

    assert sent == [("small.wav", None), ("large.wav", "100-continue")]
    for key, data in (("c1/small.wav", small), ("c1/large.wav", large)):
        assert s3_target.confirm(key, sha256_hex=sha256(data), size=len(data)).ok


def test_puts_go_through_awscrt_with_the_same_request(s3_target: S3Target, write_file: Callable[..., Path]) -> None:
    botocore_puts: list[str] = []
    s3_target.client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **kw: botocore_puts.append(request.url), unique_id="test-crt"
    )
    try:
        stored = put(s3_target, "c1/crt call.wav", write_file(), AUDIO, metadata={"Agent Name": "José"})
        again = put(s3_target, "c1/crt call.wav", write_file(), AUDIO)  # If-None-Match: * answered 412
        with pytest.raises(StorageError) as caught:
            put(s3_target, "c1/crt call.wav", write_file(OTHER, "other.wav"), OTHER)
    finally:
        s3_target.client.meta.events.unregister("before-send.s3.PutObject", unique_id="test-crt")

    assert s3_target._crt is not None and botocore_puts == []
    assert stored.server_sha256_hex == sha256(AUDIO) and not stored.already_present
    assert again.already_present and caught.value.code == "KeyConflict" and caught.value.permanent
    head = s3_target.client.head_object(Bucket=s3_target.bucket, Key="c1/crt call.wav", ChecksumMode="ENABLED")
    assert head["Metadata"] == {"agent-name": "Jos%C3%A9"} and head["ContentType"] == "audio/wav"
    assert s3_target.confirm("c1/crt call.wav", sha256_hex=sha256(AUDIO), size=len(AUDIO)).method == "server-checksum"


def test_confirm_rehashes_when_the_server_has_no_checksum(s3_target: S3Target) -> None:
    # Stored without x-amz-checksum-sha256 (as R2 may behave on HEAD): HEAD returns no checksum.
    s3_target.client.put_object(Bucket=s3_target.bucket, Key="c1/plain.wav", Body=AUDIO)
    head = s3_target.client.head_object(Bucket=s3_target.bucket, Key="c1/plain.wav", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in head

    good = s3_target.confirm("c1/plain.wav", sha256_hex=sha256(AUDIO), size=len(AUDIO))
    bad = s3_target.confirm("c1/plain.wav", sha256_hex=sha256(OTHER), size=len(OTHER))

    assert (good.ok, good.method, good.sha256_hex) == (True, "rehash", sha256(AUDIO))
    assert (bad.ok, bad.found, bad.method) == (False, True, "rehash")


def test_rehash_streams_the_object_back(s3_target: S3Target, write_file: Callable[..., Path]) -> None:
    put(s3_target, "c1/call.wav", write_file(), AUDIO)

    assert s3_target._rehash("c1/call.wav") == (sha256(AUDIO), len(AUDIO))


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"secret_access_key": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({"access_key_id": "nobody"}, "InvalidAccessKeyId"),
    ],
)
def test_wrong_credentials_give_an_actionable_error(
    settings: Any,
    s3_server: S3Server,
    s3_bucket: str,
    write_file: Callable[..., Path],
    override: dict[str, str],
    code: str,
) -> None:
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(s3_server, s3_bucket, **override)}

    with pytest.raises(StorageError) as caught:
        put(get_target(), "c1/call.wav", write_file(), AUDIO)

    message = str(caught.value)
    assert caught.value.code == code and caught.value.permanent is False
    assert "check VICIREC_S3_ACCESS_KEY_ID / VICIREC_S3_SECRET_ACCESS_KEY" in message
    assert s3_server.secret_key not in message and "not-the-secret" not in message


def test_missing_bucket_names_the_setting(settings: Any, s3_server: S3Server, write_file: Callable[..., Path]) -> None:
    settings.STORAGES = {**settings.STORAGES, "archive": s3_archive_storage(s3_server, "no-such-bucket")}

    with pytest.raises(StorageError) as caught:
        put(get_target(), "c1/call.wav", write_file(), AUDIO)

    assert caught.value.code == "NoSuchBucket" and caught.value.permanent is False
    assert "check VICIREC_S3_BUCKET" in str(caught.value)


def test_unreachable_endpoint_names_the_setting(write_file: Callable[..., Path]) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{free_ports(1)[0]}",  # nothing listens there
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(retries={"max_attempts": 1}),
    )

    with pytest.raises(StorageError) as caught:
        put(S3Target(client, "bucket"), "c1/call.wav", write_file(), AUDIO)

    assert caught.value.permanent is False
    assert "VICIREC_S3_ENDPOINT_URL" in str(caught.value)


def test_legal_hold_blocks_deleting_that_version_until_released(
    s3_server: S3Server, write_file: Callable[..., Path]
) -> None:
    target = S3Target(s3_server.client(), make_bucket(s3_server, object_lock=True))
    stored = put(target, "c1/call.wav", write_file(), AUDIO)
    assert stored.version_id

    assert target.set_legal_hold(stored.key, stored.version_id, True) is True
    refused = target.delete([(stored.key, stored.version_id)])

    assert not refused.ok and refused.failed[0].code == "AccessDenied"
    assert target.confirm(stored.key, sha256_hex=sha256(AUDIO), size=len(AUDIO), version_id=stored.version_id).ok

    assert target.set_legal_hold(stored.key, stored.version_id, False) is True
    assert target.delete([(stored.key, stored.version_id)]).ok
    gone = target.confirm(stored.key, sha256_hex=sha256(AUDIO), size=len(AUDIO), version_id=stored.version_id)
    assert gone.found is False


def test_legal_hold_is_unsupported_without_object_lock(s3_target: S3Target, write_file: Callable[..., Path]) -> None:
    stored = put(s3_target, "c1/call.wav", write_file(), AUDIO)

    assert s3_target.set_legal_hold(stored.key, stored.version_id, True) is False


def test_presigned_url_downloads_the_bytes_and_then_expires(
    s3_target: S3Target, write_file: Callable[..., Path]
) -> None:
    put(s3_target, "c1/call.wav", write_file(), AUDIO)

    url = s3_target.presigned_url("c1/call.wav", expires=60)
    assert url is not None
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (our own http URL)
        assert response.read() == AUDIO

    short = s3_target.presigned_url("c1/call.wav", expires=1)
    assert short is not None
    time.sleep(2)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(short, timeout=5)  # noqa: S310 (our own http URL)
    assert caught.value.code == 403


# --- filesystem specifics -------------------------------------------------------------------------


def test_filesystem_put_leaves_no_temporary_files(archive_fs_settings: Path, write_file: Callable[..., Path]) -> None:
    target = get_target()
    put(target, "c1/call.wav", write_file(), AUDIO)
    with pytest.raises(StorageError):
        put(target, "c1/bad.wav", write_file(), AUDIO, sha256_hex=sha256(OTHER))

    files = sorted(p.relative_to(archive_fs_settings).as_posix() for p in archive_fs_settings.rglob("*") if p.is_file())
    assert files == ["c1/call.wav"]
    assert target.presigned_url("c1/call.wav", expires=60) is None
    assert target.set_legal_hold("c1/call.wav", "", True) is False


def test_filesystem_ignores_a_crashed_upload_and_refuses_unsafe_keys(
    archive_fs_settings: Path, write_file: Callable[..., Path]
) -> None:
    target = get_target()
    (archive_fs_settings / "c1").mkdir(parents=True)
    (archive_fs_settings / "c1" / ".upload-crashed.tmp").write_bytes(b"partial")

    assert list(target.iter_keys()) == []
    for key in ("../escape.wav", "/abs.wav", "c1/../../x.wav", "c1/.hidden.wav"):
        with pytest.raises(ValueError):
            put(target, key, write_file(), AUDIO)


def test_unsupported_archive_backend_is_a_configuration_error(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }

    with pytest.raises(ImproperlyConfigured):
        get_target()


# --- keys and settings helpers --------------------------------------------------------------------


def test_object_key_layout() -> None:
    start = datetime(2026, 3, 7, 14, 5)

    assert object_key(campaign_id="COLLECT", start_time=start, filename="20260307-140500_5551234", ext="mp3") == (
        "COLLECT/2026/03/07/20260307-140500_5551234.mp3"
    )
    assert object_key(campaign_id="", start_time=start, filename="x", ext=".WAV") == "_unassigned/2026/03/07/x.wav"


@pytest.mark.parametrize("filename", ["../../etc/passwd", "a/b", "..", "bad\x00name\n", ".hidden"])
def test_object_key_never_escapes_its_folder(filename: str) -> None:
    key = object_key(campaign_id="../c", start_time=datetime(2026, 1, 2), filename=filename + "x", ext="wav")

    parts = key.split("/")
    assert len(parts) == 5 and parts[0] == "_c"
    assert not any(p.startswith(".") or not p.isprintable() for p in parts)


def test_storage_options_for_r2() -> None:
    options = s3_storage_options(
        bucket="calls",
        endpoint_url=r2_endpoint("0123456789abcdef0123456789abcdef"),
        region="auto",
        access_key_id=None,
        secret_access_key="",
    )

    assert options["endpoint_url"] == "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
    assert (options["access_key"], options["secret_key"]) == (None, None)  # boto3's standard chain
    assert options["client_config"].request_checksum_calculation == "when_required"
    assert options["transfer_config"].multipart_threshold == 5 * 1024**3
    assert options["file_overwrite"] is False


@pytest.mark.parametrize(("start", "end"), [(0, None), (0, 0), (100, 299), (len(AUDIO) - 5, None), (17, 10**9)])
def test_iter_object_reads_a_byte_range(
    target: ArchiveTarget, write_file: Callable[..., Path], start: int, end: int | None
) -> None:
    """A part of an object is one ranged read (S3: GET with Range; a folder: a seek), for playback's 206."""
    put(target, "c1/call.wav", write_file(), AUDIO)

    got = b"".join(target.iter_object("c1/call.wav", start=start, end=end))

    assert got == AUDIO[start : None if end is None else end + 1]


def test_a_ranged_read_asks_the_bucket_for_those_bytes_only(
    s3_target: S3Target, write_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    put(s3_target, "c1/call.wav", write_file(), AUDIO)
    asked: list[dict[str, Any]] = []
    real = s3_target.client.get_object
    monkeypatch.setattr(s3_target.client, "get_object", lambda **kw: asked.append(kw) or real(**kw))

    assert b"".join(s3_target.iter_object("c1/call.wav", start=4096, end=4099)) == AUDIO[4096:4100]
    assert asked[0]["Range"] == "bytes=4096-4099"


# --- storage classes ------------------------------------------------------------------------------


def test_put_sends_the_storage_class_and_seaweedfs_keeps_and_reports_it(
    s3_target: S3Target, write_file: Callable[..., Path]
) -> None:
    """SeaweedFS stores the StorageClass header and returns it on HEAD and in listings, as S3 does (it does
    not tier anything: the class is a label there). Without one, the object reads back as STANDARD."""
    put(s3_target, "c1/ia.wav", write_file(), AUDIO, storage_class="STANDARD_IA")
    put(s3_target, "c1/plain.wav", write_file(name="plain.wav"), AUDIO)

    assert s3_target.storage_class_of("c1/ia.wav") == "STANDARD_IA"
    assert s3_target.storage_class_of("c1/plain.wav") == "STANDARD"
    listed = s3_target.client.list_objects_v2(Bucket=s3_target.bucket)["Contents"]
    assert {item["Key"]: item["StorageClass"] for item in listed} == {
        "c1/ia.wav": "STANDARD_IA",
        "c1/plain.wav": "STANDARD",
    }


def test_the_filesystem_target_accepts_and_ignores_a_storage_class(
    archive_fs_settings: Path, write_file: Callable[..., Path]
) -> None:
    target = get_target()
    stored = put(target, "c1/call.wav", write_file(), AUDIO, storage_class="GLACIER_IR")

    assert (archive_fs_settings / "c1/call.wav").read_bytes() == AUDIO
    assert target.change_class("c1/call.wav", "", storage_class="STANDARD", sha256_hex=sha256(AUDIO), size=len(AUDIO))
    assert stored.version_id == ""


def test_change_class_in_a_versioned_bucket_copies_verifies_and_keeps_the_old_version(
    s3_server: S3Server, write_file: Callable[..., Path]
) -> None:
    target = S3Target(s3_server.client(), make_bucket(s3_server, object_lock=True))
    old = put(target, "c1/call.wav", write_file(), AUDIO, metadata={"vicirec-recording-id": "7"})

    new = target.change_class(
        "c1/call.wav", old.version_id, storage_class="GLACIER_IR", sha256_hex=sha256(AUDIO), size=len(AUDIO)
    )

    assert new.version_id and new.version_id != old.version_id
    assert new.server_sha256_hex == sha256(AUDIO)  # the server's own checksum of the copy
    assert target.storage_class_of("c1/call.wav", new.version_id) == "GLACIER_IR"
    assert target.storage_class_of("c1/call.wav", old.version_id) == "STANDARD"  # still there, for the caller
    head = target.client.head_object(Bucket=target.bucket, Key="c1/call.wav", VersionId=new.version_id)
    assert head["Metadata"] == {"vicirec-recording-id": "7"} and head["ContentType"] == "audio/wav"


def test_change_class_in_an_unversioned_bucket_replaces_the_object_in_place(
    s3_target: S3Target, write_file: Callable[..., Path]
) -> None:
    """SeaweedFS refuses a copy onto itself that changes only the storage class ("illegal copy … without
    changing the object's metadata, storage class …"); S3 accepts it. Re-sending the metadata (REPLACE)
    works on both, so change_class always does that."""
    put(s3_target, "c1/call.wav", write_file(), AUDIO)
    source = {"Bucket": s3_target.bucket, "Key": "c1/call.wav"}
    with pytest.raises(ClientError, match="illegal"):
        s3_target.client.copy_object(
            Bucket=s3_target.bucket, Key="c1/call.wav", CopySource=source, StorageClass="STANDARD_IA"
        )

    moved = s3_target.change_class(
        "c1/call.wav", "", storage_class="STANDARD_IA", sha256_hex=sha256(AUDIO), size=len(AUDIO)
    )

    assert moved.version_id == ""
    assert s3_target.storage_class_of("c1/call.wav") == "STANDARD_IA"
    assert s3_target.confirm("c1/call.wav", sha256_hex=sha256(AUDIO), size=len(AUDIO)).ok


def test_change_class_refuses_a_copy_that_does_not_match_the_catalog(
    s3_target: S3Target, write_file: Callable[..., Path]
) -> None:
    put(s3_target, "c1/call.wav", write_file(), AUDIO)

    with pytest.raises(StorageError, match="does not match") as caught:
        s3_target.change_class(
            "c1/call.wav", "", storage_class="STANDARD_IA", sha256_hex=sha256(OTHER), size=len(OTHER)
        )
    assert caught.value.code == "CopyMismatch"
