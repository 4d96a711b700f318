"""`s3://bucket/prefix/` locations, parsed once and validated."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key prefix that is empty or ends with `/`."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str, *, field: str = "s3 uri") -> S3Location:
        """Parse `s3://bucket[/prefix]`, appending the trailing `/` a prefix needs."""
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            raise ValueError(f"{field}: must start with s3:// (got {uri!r})")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"{field}: must name a bucket after s3:// (got {uri!r})")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        if "//" in prefix or prefix.startswith("/"):
            raise ValueError(f"{field}: must not contain empty path segments (got {uri!r})")
        return cls(bucket=bucket, prefix=prefix)

    def child(self, *parts: str) -> S3Location:
        """The location `parts` below this one (each part may itself hold `/`)."""
        suffix = "".join(part.strip("/") + "/" for part in parts)
        return S3Location(bucket=self.bucket, prefix=self.prefix + suffix)

    def key(self, relative_path: str) -> str:
        return self.prefix + relative_path

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"
