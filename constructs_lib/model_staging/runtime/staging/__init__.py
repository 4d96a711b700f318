"""Stage Hugging Face model snapshots into S3 and package them for SageMaker.

Stdlib and boto3 only: this package is deployed as-is to Lambda (no bundling) and is also the
operator CLI (`python -m constructs_lib.model_staging`). Modules import each other relatively so the
package works both as `staging` (Lambda task root) and inside `constructs_lib`.
"""
