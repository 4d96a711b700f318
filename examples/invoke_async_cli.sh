#!/usr/bin/env bash
# Generate one clip with the AWS CLI: upload the request, invoke-endpoint-async, then wait for
# the output (audio) or the failure object (the error, printed; exit 1).
# Usage: examples/invoke_async_cli.sh BUCKET ENDPOINT REQUEST.json OUT.wav
set -euo pipefail
bucket=$1 endpoint=$2 request=$3 out=$4
key="async-input/$(date +%s)-$RANDOM.json"
aws s3 cp "$request" "s3://$bucket/$key" --content-type application/json --quiet
read -r output failure < <(aws sagemaker-runtime invoke-endpoint-async \
  --endpoint-name "$endpoint" --input-location "s3://$bucket/$key" \
  --content-type application/json --accept audio/wav \
  --query '[OutputLocation, FailureLocation]' --output text)
for _ in $(seq 900); do
  if aws s3 cp "$output" "$out" --quiet 2>/dev/null; then echo "wrote $out"; exit 0; fi
  if error=$(aws s3 cp "$failure" - 2>/dev/null); then echo "$error" >&2; exit 1; fi
  sleep 1
done
echo "no result after 900 s: $output" >&2
exit 4
