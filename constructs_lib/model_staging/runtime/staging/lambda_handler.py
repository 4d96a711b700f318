"""The custom resources' Lambda entry points (CDK Provider framework: on_event + is_complete).

`on_event` only resolves what the resource will be (cheap, fails fast on a bad revision);
`is_complete` does the copying in budgeted slices, polled until it reports done.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import boto3

from .budget import Deadline
from .hub import HubClient
from .hub_token import read_hub_token
from .package import (
    WeightsSource,
    build_package,
    code_files_from_zip,
    delete_package,
    package_location,
    snapshot_weights,
    user_weights,
)
from .s3_client import s3_client
from .s3_location import S3Location
from .snapshot import snapshot_location, stage_snapshot

SNAPSHOT_RESOURCE = "Custom::ModelSnapshot"
PACKAGE_RESOURCE = "Custom::ModelPackage"
# No part (or part copy) starts later than this before Lambda's own timeout.
SAFETY_MARGIN_SECONDS = 120.0
# Hub requests already started are cut off this long before Lambda's timeout (the work done so far
# stays in S3 and the next poll resumes): enough to upload a finished part and return.
HUB_MARGIN_SECONDS = 20.0

logging.getLogger().setLevel(os.environ.get("LOG_LEVEL", "INFO"))
LOG = logging.getLogger(__name__)


def _remaining_seconds(context: Any) -> float:
    return context.get_remaining_time_in_millis() / 1000


def _required(properties: dict[str, Any], name: str) -> str:
    value = properties.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"resource property {name}: must be a non-empty string (got {value!r})")
    return value


def _hub(properties: dict[str, Any], context: Any) -> HubClient:
    secret_name = properties.get("HubTokenSecretName") or None
    token = read_hub_token(boto3.client("secretsmanager"), secret_name) if secret_name else None
    deadline = Deadline(_remaining_seconds(context) - HUB_MARGIN_SECONDS)
    return HubClient(token=token, deadline=deadline)


def _root(properties: dict[str, Any]) -> S3Location:
    return S3Location(
        bucket=_required(properties, "Bucket"), prefix=_required(properties, "KeyPrefix")
    )


def _weights(s3: Any, properties: dict[str, Any]) -> WeightsSource:
    if properties.get("ModelS3Uri"):
        return user_weights(s3, S3Location.parse(properties["ModelS3Uri"], field="ModelS3Uri"))
    return snapshot_weights(s3, S3Location.parse(_required(properties, "SnapshotUri")))


def _package(s3: Any, properties: dict[str, Any]) -> tuple[S3Location, WeightsSource]:
    weights = _weights(s3, properties)
    location = package_location(
        _root(properties),
        _required(properties, "ModelId"),
        weights.version,
        _required(properties, "CodeHash"),
    )
    return location, weights


def on_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request, resource = event["RequestType"], event["ResourceType"]
    properties = event["ResourceProperties"]
    LOG.info(
        "%s %s %s", request, resource, {k: v for k, v in properties.items() if k != "ServiceToken"}
    )
    if resource not in (SNAPSHOT_RESOURCE, PACKAGE_RESOURCE):
        raise ValueError(
            f"resource type: must be {SNAPSHOT_RESOURCE} or {PACKAGE_RESOURCE} (got {resource})"
        )
    if request == "Delete":
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    if resource == SNAPSHOT_RESOURCE:
        model_id = _required(properties, "ModelId")
        with _hub(properties, context) as hub:
            info = hub.revision_info(model_id, _required(properties, "Revision"))
        location = snapshot_location(_root(properties), model_id, info.commit)
        return {
            "PhysicalResourceId": location.uri,
            "Data": {"Commit": info.commit, "SnapshotUri": location.uri},
        }
    location, weights = _package(s3_client(), properties)
    return {
        "PhysicalResourceId": location.uri,
        "Data": {"Commit": weights.version, "ModelDataUrl": location.uri},
    }


def is_complete(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request, resource = event["RequestType"], event["ResourceType"]
    properties = event["ResourceProperties"]
    budget = Deadline(_remaining_seconds(context) - SAFETY_MARGIN_SECONDS)
    s3 = s3_client()
    if resource == SNAPSHOT_RESOURCE:
        if request == "Delete":
            return {"IsComplete": True}  # models/ is an immutable cache shared by redeploys
        with _hub(properties, context) as hub:
            result = stage_snapshot(
                s3=s3,
                hub=hub,
                model_id=_required(properties, "ModelId"),
                revision=event["Data"]["Commit"],
                requested_revision=_required(properties, "Revision"),
                models_root=_root(properties),
                budget=budget,
            )
        LOG.info(
            "copied %d files, %d bytes from the Hub",
            result.stats.files_copied,
            result.stats.bytes_from_hub,
        )
        return {"IsComplete": result.done}
    if request == "Delete":
        return {"IsComplete": _delete_own_package(s3, event, budget)}
    location, weights = _package(s3, properties)
    if location.uri != event["PhysicalResourceId"]:
        raise RuntimeError(
            f"weights at {weights.location.uri} changed during the deployment: the package is now "
            f"{location.uri}, it was {event['PhysicalResourceId']}"
        )
    archive = s3.get_object(
        Bucket=_required(properties, "CodeBucket"), Key=_required(properties, "CodeKey")
    )
    code = code_files_from_zip(archive["Body"].read())
    done = build_package(s3=s3, weights=weights, code=code, destination=location, budget=budget)
    return {"IsComplete": done}


def _delete_own_package(s3: Any, event: dict[str, Any], budget: Deadline) -> bool:
    """Delete the package this resource made; anything else (a failed create's id) is left alone.

    CloudFormation deletes an old package only after its replacement succeeded, so the endpoint
    never points at a deleted prefix; `models/` is never touched.
    """
    root = _root(event["ResourceProperties"])
    physical_id = event.get("PhysicalResourceId", "")
    if not physical_id.startswith(root.uri) or physical_id.count("/") < root.uri.count("/") + 4:
        LOG.info("nothing to delete for physical id %r", physical_id)
        return True
    return delete_package(s3=s3, location=S3Location.parse(physical_id), budget=budget)
