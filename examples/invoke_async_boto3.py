"""Generate one clip with plain boto3: upload the request, InvokeEndpointAsync, then wait for
the output (audio) or the failure object (the error, printed; exit 1).

Usage: python examples/invoke_async_boto3.py BUCKET ENDPOINT REQUEST.json OUT.wav
"""

import sys
import time
import uuid

import boto3

bucket, endpoint_name, request_file, out = sys.argv[1:5]
s3 = boto3.client("s3")
runtime = boto3.client("sagemaker-runtime")

key = f"async-input/{uuid.uuid4()}.json"
with open(request_file, "rb") as request:
    s3.put_object(Bucket=bucket, Key=key, Body=request, ContentType="application/json")
response = runtime.invoke_endpoint_async(
    EndpointName=endpoint_name,
    InputLocation=f"s3://{bucket}/{key}",
    ContentType="application/json",
    Accept="audio/wav",
)


def read(location: str) -> bytes | None:
    location_bucket, _, location_key = location.removeprefix("s3://").partition("/")
    try:
        return s3.get_object(Bucket=location_bucket, Key=location_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


for _ in range(900):
    if (audio := read(response["OutputLocation"])) is not None:
        with open(out, "wb") as clip:
            clip.write(audio)
        print(f"wrote {out}")
        sys.exit(0)
    if (failure := read(response["FailureLocation"])) is not None:
        print(failure.decode(), file=sys.stderr)
        sys.exit(1)
    time.sleep(1)
sys.exit(f"no result after 900 s: {response['OutputLocation']}")
