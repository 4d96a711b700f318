"""S3 locations, budgets, Hub token secrets, digests and code archives of the staging runtime."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile

import pytest
from botocore.exceptions import ClientError

from constructs_lib.model_staging.runtime.staging.budget import Deadline, Unlimited
from constructs_lib.model_staging.runtime.staging.digests import ContentDigest, VerificationError
from constructs_lib.model_staging.runtime.staging.hub_token import read_hub_token
from constructs_lib.model_staging.runtime.staging.package import (
    code_files_from_zip,
    package_location,
)
from constructs_lib.model_staging.runtime.staging.s3_location import S3Location
from constructs_lib.model_staging.runtime.staging.selection import HubFile
from constructs_lib.model_staging.runtime.staging.transfer import FileStager, is_missing


@pytest.mark.parametrize(
    ("uri", "bucket", "prefix"),
    [
        ("s3://bucket", "bucket", ""),
        ("s3://bucket/", "bucket", ""),
        ("s3://bucket/models", "bucket", "models/"),
        ("s3://bucket/a/b/", "bucket", "a/b/"),
    ],
)
def test_s3_location_parse(uri: str, bucket: str, prefix: str) -> None:
    assert S3Location.parse(uri) == S3Location(bucket, prefix)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("bucket/models", r"--s3-uri: must start with s3:// \(got 'bucket/models'\)"),
        ("s3:///models", r"--s3-uri: must name a bucket after s3://"),
        ("s3://b/a//c", r"--s3-uri: must not contain empty path segments"),
    ],
)
def test_s3_location_rejects(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        S3Location.parse(uri, field="--s3-uri")


def test_s3_location_child_and_key() -> None:
    root = S3Location("b", "models/")
    child = root.child("facebook/musicgen-small", "abc")
    assert child.uri == "s3://b/models/facebook/musicgen-small/abc/"
    assert child.key("config.json") == "models/facebook/musicgen-small/abc/config.json"


def test_deadline_runs_out_on_its_clock() -> None:
    now = [100.0]
    deadline = Deadline(30, clock=lambda: now[0])
    assert not deadline.exhausted()
    assert deadline.remaining() == 30
    now[0] = 129.9
    assert not deadline.exhausted()
    assert deadline.remaining() == pytest.approx(0.1)
    now[0] = 130.0
    assert deadline.exhausted()
    now[0] = 140.0
    assert deadline.remaining() == 0
    assert Deadline(-5).exhausted()
    assert not Unlimited().exhausted()
    assert Unlimited().remaining() == float("inf")


class SecretsManager:
    """Answers get_secret_value like Secrets Manager does for one stored SecretString."""

    def __init__(self, value: str) -> None:
        self.value = value

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        return {"Name": SecretId, "SecretString": self.value}


@pytest.mark.parametrize(
    "stored", ["hf_abc", " hf_abc\n", '{"token": "hf_abc"}', '{"HF_TOKEN": "hf_abc", "x": 1}']
)
def test_hub_token_formats(stored: str) -> None:
    assert read_hub_token(SecretsManager(stored), "hub") == "hf_abc"


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("  ", "hub token secret hub: must hold a non-empty SecretString"),
        ("{oops", "hub token secret hub: invalid JSON"),
        ('{"password": "x"}', "a JSON secret must hold exactly one of the string keys token"),
        ('{"token": "a", "HF_TOKEN": "b"}', "exactly one of the string keys"),
    ],
)
def test_hub_token_errors(stored: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_hub_token(SecretsManager(stored), "hub")


def test_digest_checks_size_sha256_and_git_blob() -> None:
    content = b'{"a": 1}'
    blob_id = hashlib.sha1(b"blob 8\0" + content).hexdigest()
    sha256 = hashlib.sha256(content).hexdigest()

    for file in (
        HubFile("c.json", 8, None, blob_id),
        HubFile("w.safetensors", 8, sha256, None),
    ):
        digest = ContentDigest(file)
        digest.update(content[:3])
        digest.update(content[3:])
        assert digest.verify() == sha256

    short = ContentDigest(HubFile("c.json", 9, None, None))
    short.update(content)
    with pytest.raises(
        VerificationError, match=r"c\.json: size mismatch: got 8 bytes, the Hub lists 9"
    ):
        short.verify()
    wrong = ContentDigest(HubFile("c.json", 8, None, "0" * 40))
    wrong.update(content)
    with pytest.raises(VerificationError, match=r"c\.json: git blob id mismatch"):
        wrong.verify()
    other = ContentDigest(HubFile("w.safetensors", 8, "0" * 64, None))
    other.update(content)
    with pytest.raises(
        VerificationError,
        match=rf"w\.safetensors: sha256 mismatch: got {sha256}, the Hub lists {'0' * 64}$",
    ):
        other.verify()


def zip_of(*entries: tuple[str, bytes]) -> bytes:
    """A zip holding `entries` in this order; a name ending in "/" is a directory entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, body in entries:
            bundle.writestr(zipfile.ZipInfo(name), body)
    return buffer.getvalue()


INFERENCE = ("inference.py", b"def model_fn(model_dir, context=None):\n    return model_dir\n")


def test_code_files_from_zip_keeps_the_files_without_directories_or_bytecode() -> None:
    archive = zip_of(
        ("lib/", b""),
        ("__pycache__/inference.cpython-311.pyc", b"\x00bytecode"),
        INFERENCE,
        ("lib/util.py", b"SCALE = 2\n"),
        ("lib/__pycache__/notes.txt", b"left by a tool"),
        ("stale.pyc", b"\x00bytecode"),
        ("assets/presets.json", b"{}"),
    )

    assert code_files_from_zip(archive) == {
        "inference.py": INFERENCE[1],
        "lib/util.py": b"SCALE = 2\n",
        "assets/presets.json": b"{}",
    }


@pytest.mark.parametrize("name", ["/etc/inference.py", "lib/../../inference.py", "../x.py"])
def test_code_files_from_zip_refuses_paths_outside_the_folder(name: str) -> None:
    archive = zip_of(INFERENCE, (name, b"escape = True\n"))

    with pytest.raises(
        ValueError, match=f"^code asset: unsafe path {re.escape(repr(name))} in the archive$"
    ):
        code_files_from_zip(archive)


def test_code_files_from_zip_needs_inference_py_at_its_root() -> None:
    archive = zip_of(("code/inference.py", INFERENCE[1]), ("b.py", b""), ("a.py", b""))

    with pytest.raises(
        ValueError,
        match=re.escape(
            "code asset: must hold inference.py at its root "
            "(got ['a.py', 'b.py', 'code/inference.py'])"
        ),
    ):
        code_files_from_zip(archive)


@pytest.mark.parametrize("code_hash", ["short", "c0de" * 32 + "x", "../c0dec0de"])
def test_package_location_refuses_a_bad_code_hash(code_hash: str) -> None:
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"code hash: must be 8-128 letters, digits, '_' or '-' (got {code_hash!r})"
        ),
    ):
        package_location(S3Location("b", "packages/"), "facebook/musicgen-small", "v1", code_hash)


@pytest.mark.parametrize(
    ("code", "missing"),
    [
        ("404", True),  # a HEAD answer has no body: botocore names the error by its status
        ("NoSuchKey", True),
        ("NotFound", True),
        ("403", False),
        ("AccessDenied", False),
        ("NoSuchBucket", False),  # a missing bucket is a misconfiguration, not a missing object
    ],
)
def test_is_missing_knows_the_not_found_codes(code: str, missing: bool) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "m"}}, "HeadObject")

    assert is_missing(error) is missing


def test_is_missing_reads_an_error_answer_without_an_error_code_as_present() -> None:
    assert is_missing(ClientError({}, "HeadObject")) is False


def test_a_file_stager_needs_a_worker() -> None:
    with pytest.raises(ValueError, match=r"^workers: must be at least 1 \(got 0\)$"):
        FileStager(
            s3=None,
            hub=None,
            model_id="facebook/musicgen-small",
            commit="0" * 40,
            destination=S3Location(bucket="bucket", prefix="models/"),
            budget=Unlimited(),
            part_size=5 * 1024 * 1024,
            workers=0,
        )
