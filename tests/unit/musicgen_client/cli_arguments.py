"""Command-line arguments the CLI tests share."""

# An explicit endpoint and its S3 locations: the CLI needs no stack to read.
EXPLICIT = [
    "--endpoint-name",
    "musicgen-dev",
    "--input-s3-uri",
    "s3://musicgen-bucket/async-input/",
    "--output-s3-uri",
    "s3://musicgen-bucket/async-output/",
    "--failure-s3-uri",
    "s3://musicgen-bucket/async-failure/",
]
