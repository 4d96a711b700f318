"""SageMaker ML instance types: their family, and whether they carry local NVMe storage."""

from __future__ import annotations

import re

INSTANCE_TYPE_PATTERN = re.compile(
    r"^ml\.(?P<family>[a-z0-9-]+)\.(?P<size>(\d+)?xlarge|large|metal-\d+xl)$"
)
# Families with local NVMe instance storage: SageMaker rejects VolumeSizeInGB and an
# endpoint-config KmsKeyId on them ("d" in the family name marks instance storage).
_NVME_WITHOUT_D = frozenset({"g5", "g6", "g6e", "p5", "p5e", "p5en"})


def instance_family(instance_type: str) -> str:
    match = INSTANCE_TYPE_PATTERN.match(instance_type)
    if not match:
        raise ValueError(f"not an ml.<family>.<size> instance type: {instance_type}")
    return match["family"]


def has_local_nvme(instance_type: str) -> bool:
    family = instance_family(instance_type)
    return family in _NVME_WITHOUT_D or bool(re.search(r"\d[a-z]*d[a-z]*$", family))
