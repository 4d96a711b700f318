"""Reading `cdk diff` text, on the CLI's real output for this app (fixtures/app_diffs)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tests.unit.delivery.delivery_paths import APP_DIFFS

JSII_BANNER = (
    "b'!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\\n'\n"
    "b'!!  Node 20 is end-of-life and not supported anymore by this software.  !!\\n'\n"
)


def _diff(parser: ModuleType, name: str) -> Any:
    return parser.parse(parser.clean((APP_DIFFS / f"{name}.txt").read_text(encoding="utf-8")))


def test_clean_drops_colour_codes_and_jsii_banners(parser: ModuleType) -> None:
    coloured = (APP_DIFFS / "iam_statement_colour.txt").read_text(encoding="utf-8")
    plain = (APP_DIFFS / "iam_statement.txt").read_text(encoding="utf-8")
    assert "\x1b[" in coloured, "the colour fixture lost its colour: regenerate it"
    cleaned = parser.clean(JSII_BANNER + coloured)
    assert "\x1b" not in cleaned and "b'!!" not in cleaned
    # The CLI may group the rows of its IAM table differently from one run to the next.
    assert set(cleaned.strip().splitlines()) == set(plain.strip().splitlines())
    assert parser.parse(cleaned) == parser.parse(plain)


def test_resource_lines_give_type_path_logical_id_and_impact(parser: ModuleType) -> None:
    diff = _diff(parser, "bucket_replacement")
    headers = {(r.change, r.resource_type, r.path, r.logical_id, r.impact) for r in diff.resources}
    assert ("-", "AWS::S3::Bucket", "AccessLogs", "AccessLogs8B620ECA", "orphan") in headers
    assert ("+", "AWS::S3::Bucket", "AccessLogs", "ServerAccessLogs", "") in headers
    (models,) = [r for r in diff.resources if r.path == "ModelArtifacts/Bucket"]
    assert models.impact == "replace"
    assert [(p.name, p.change, p.replacement) for p in models.properties] == [
        ("BucketName", "+", "requires replacement"),
        ("LoggingConfiguration", "~", ""),
    ]


def test_nested_changes_name_the_keys_that_changed(parser: ModuleType) -> None:
    diff = _diff(parser, "security_categories")
    by_path = {r.path: r for r in diff.resources}
    (config,) = by_path["Endpoint/EndpointConfig"].properties
    assert config.name == "AsyncInferenceConfig"
    assert {"OutputConfig", "KmsKeyId"} <= config.changed_keys  # `[+] Added: .KmsKeyId`
    (encryption,) = by_path["AsyncIO/Bucket"].properties
    assert "SSEAlgorithm" in encryption.changed_keys  # a JSON hunk line
    (network,) = by_path["Endpoint/Model"].properties
    assert (network.name, network.change, network.replacement) == (
        "EnableNetworkIsolation",
        "+",
        "requires replacement",
    )


def test_changes_outside_resources_are_kept_apart(parser: ModuleType) -> None:
    tagged = _diff(parser, "tags_description")
    assert [(t.change, t.section, t.name) for t in tagged.template_changes] == [
        ("~", "Description", "Description")
    ]
    assert not tagged.unchanged
    moved = _diff(parser, "instance_type")
    assert ("~", "Output", "EndpointName") in {
        (t.change, t.section, t.name) for t in moved.template_changes
    }


def test_metadata_only_and_identical_templates_are_unchanged(parser: ModuleType) -> None:
    metadata = _diff(parser, "metadata_only")
    assert len(metadata.resources) > 30 and all(r.is_noise for r in metadata.resources)
    assert metadata.unchanged and not metadata.no_differences
    identical = _diff(parser, "no_differences")
    assert identical.unchanged and identical.no_differences and not identical.resources


def test_security_tables_are_cut_out_whole(parser: ModuleType) -> None:
    tables = _diff(parser, "iam_statement").security_tables
    assert tables.startswith("IAM Statement Changes\n┌")
    assert tables.endswith("┘")
    assert "s3:GetBucketLocation" in tables
    assert _diff(parser, "instance_type").security_tables == ""
