"""Turn each environment's `cdk diff` output into one pull-request comment (Markdown).

Usage: format_diff_comment.py RESULTS_DIR --environments '["dev","prod"]' [--run-url URL]
       [--commit SHA] > comment.md

RESULTS_DIR holds one folder per environment, written by the diff job:
  status      first line `ok`, `skipped` or `failed`; the lines after it say why
  output.txt  what `make diff` printed (absent when skipped)

The comment opens with a hidden marker (its first line) so the workflow finds and updates the
same comment on every push. Security-relevant changes (IAM, bucket and other resource
policies, encryption, KMS, network access, secrets) come first; then each environment's full
diff, collapsed in its own <details>. GitHub rejects comments over 65,536 characters, so long
diffs are cut to fit, saying so and pointing at the run. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

MARKER = "<!-- musicgen-cdk-diff -->"
COMMENT_LIMIT = 65_536
# Head-room under GitHub's limit for the multi-byte characters of the diff's tree drawing.
DEFAULT_BUDGET = 60_000
STATUSES = ("ok", "skipped", "failed")
# Below this a cut diff block says too little to be worth showing at all.
MIN_BLOCK = 500

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# jsii (the bridge the Python CDK runs on) prints a banner of byte-string lines about the Node
# version to the same stream, sometimes in the middle of a diff line.
_JSII_BANNER = re.compile(r"b'!![^\n]*?\\n'\n?")
_RESOURCE = re.compile(r"^\[(?P<change>[+~-])\] (?P<type>(?:AWS|Custom|Alexa)::\S+) (?P<rest>.*)$")
_PROPERTY = re.compile(r"^ [├└]─ \[(?P<change>[+~-])\] (?P<name>[A-Za-z0-9_.]+)")
_SECURITY_TABLE_TITLES = ("IAM Statement Changes", "IAM Policy Changes", "Security Group Changes")
_SECURITY_TABLE_END = "(NOTE: There may be security-related changes"
_NO_DIFFERENCES = ("There were no differences", "Number of stacks with differences: 0")

# What makes a change security-relevant, and the words the comment uses for it.
_SECURITY_TYPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^AWS::IAM::"), "IAM"),
    (re.compile(r"^AWS::S3::BucketPolicy$"), "bucket policy"),
    (re.compile(r"^AWS::KMS::"), "KMS"),
    (
        re.compile(r"^AWS::(SNS::TopicPolicy|SQS::QueuePolicy|Lambda::Permission)$"),
        "resource policy",
    ),
    (
        re.compile(r"^AWS::EC2::(SecurityGroup|SecurityGroupIngress|SecurityGroupEgress)$"),
        "network",
    ),
    (re.compile(r"^AWS::SecretsManager::"), "secret"),
)
_SECURITY_PROPERTIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Encrypt|SSE|KmsKey|KmsMasterKey|KMSMasterKey", re.IGNORECASE), "encryption"),
    (re.compile(r"PublicAccessBlock|AccessControl|CorsConfiguration"), "public access"),
    (re.compile(r"Polic(y|ies)|ManagedPolicyArns|PermissionsBoundary"), "IAM"),
    (re.compile(r"Role(Arn)?$|ExecutionRole"), "IAM"),
    (re.compile(r"SecurityGroup|VpcConfig|Subnet"), "network"),
)
_NOISE_PROPERTIES = frozenset({"Metadata"})


@dataclass(frozen=True)
class ResourceChange:
    change: str
    resource_type: str
    name: str
    properties: tuple[str, ...] = ()

    @property
    def meaningful_properties(self) -> tuple[str, ...]:
        return tuple(p for p in self.properties if p not in _NOISE_PROPERTIES)

    @property
    def is_noise(self) -> bool:
        """A modification that only touches construct metadata changes nothing in AWS."""
        return self.change == "~" and not self.meaningful_properties

    @property
    def security_properties(self) -> tuple[str, ...]:
        """The changed properties that matter for security (all of them on an IAM resource)."""
        flagged = tuple(
            p
            for p in self.meaningful_properties
            if any(pattern.search(p) for pattern, _ in _SECURITY_PROPERTIES)
        )
        return flagged or self.meaningful_properties

    @property
    def security_reasons(self) -> tuple[str, ...]:
        if self.is_noise:
            return ()
        reasons = [
            label for pattern, label in _SECURITY_TYPES if pattern.search(self.resource_type)
        ]
        for prop in self.meaningful_properties:
            reasons += [label for pattern, label in _SECURITY_PROPERTIES if pattern.search(prop)]
        return tuple(dict.fromkeys(reasons))


@dataclass(frozen=True)
class EnvironmentResult:
    environment: str
    status: str
    reason: str = ""
    output: str = ""
    resources: tuple[ResourceChange, ...] = ()
    security_tables: str = ""
    no_differences: bool = False

    @property
    def unchanged(self) -> bool:
        """Nothing would change in AWS: only construct metadata differs, or nothing at all."""
        return self.no_differences or (not self.changes and not self.security_tables)

    @property
    def changes(self) -> tuple[ResourceChange, ...]:
        return tuple(r for r in self.resources if not r.is_noise)

    @property
    def security_changes(self) -> tuple[ResourceChange, ...]:
        return tuple(r for r in self.changes if r.security_reasons)

    @property
    def has_security_changes(self) -> bool:
        return bool(self.security_changes or self.security_tables)

    def count(self, change: str) -> int:
        return sum(1 for r in self.changes if r.change == change)


@dataclass
class _Budget:
    """How many characters each code block may keep (None: all), and what was cut."""

    per_block: int | None
    blocks: int = 0
    truncated: list[str] = field(default_factory=list)


def clean(text: str) -> str:
    """Drop colour codes, jsii banners and carriage returns."""
    text = _JSII_BANNER.sub("", text.replace("\r\n", "\n"))
    return _ANSI.sub("", text).replace("\r", "")


def parse_resources(text: str) -> tuple[ResourceChange, ...]:
    """The `[+]`/`[~]`/`[-]` resource lines and the top-level properties each one changes."""
    changes: list[ResourceChange] = []
    open_change: ResourceChange | None = None
    for line in text.splitlines():
        resource = _RESOURCE.match(line)
        prop = _PROPERTY.match(line)
        if resource:
            if open_change:
                changes.append(open_change)
            words = resource["rest"].split()
            open_change = ResourceChange(
                resource["change"], resource["type"], words[0] if words else ""
            )
        elif prop and open_change:
            open_change = replace(open_change, properties=(*open_change.properties, prop["name"]))
        elif open_change and line and not line.startswith((" ", "│")):
            changes.append(open_change)
            open_change = None
    if open_change:
        changes.append(open_change)
    return tuple(changes)


def security_tables(text: str) -> str:
    """The IAM / security-group tables cdk diff prints before the resource list."""
    lines = text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.strip() in _SECURITY_TABLE_TITLES), None
    )
    if start is None:
        return ""
    end = next(
        (i for i in range(start, len(lines)) if lines[i].startswith(_SECURITY_TABLE_END)),
        len(lines),
    )
    return "\n".join(lines[start:end]).strip("\n")


def read_result(results_dir: Path, environment: str) -> EnvironmentResult:
    folder = results_dir / environment
    status_file = folder / "status"
    if not status_file.is_file():
        return EnvironmentResult(
            environment,
            "failed",
            "no result: the job stopped before cdk diff ran (see the workflow run)",
        )
    status_line, _, reason = status_file.read_text(encoding="utf-8").partition("\n")
    status = status_line.strip()
    if status not in STATUSES:
        return EnvironmentResult(
            environment, "failed", f"unreadable status {status!r}; expected one of {STATUSES}"
        )
    output_file = folder / "output.txt"
    output = (
        clean(output_file.read_text(encoding="utf-8", errors="replace")).strip("\n")
        if (output_file.is_file())
        else ""
    )
    return EnvironmentResult(
        environment,
        status,
        reason.strip(),
        output,
        parse_resources(output) if status == "ok" else (),
        security_tables(output) if status == "ok" else "",
        status == "ok" and any(phrase in output for phrase in _NO_DIFFERENCES),
    )


def _fence(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _code_block(text: str, budget: _Budget, label: str) -> str:
    budget.blocks += 1
    if budget.per_block is not None and len(text) > budget.per_block:
        kept = text[: budget.per_block].rsplit("\n", 1)[0]
        dropped = text.count("\n") - kept.count("\n")
        text = f"{kept}\n… {dropped} more lines cut to fit the comment; the run log has them all"
        budget.truncated.append(label)
    fence = _fence(text)
    return f"{fence}\n{text}\n{fence}"


def _summary_cells(result: EnvironmentResult) -> tuple[str, str, str]:
    if result.status == "skipped":
        return "⏭️ skipped", "—", "—"
    if result.status == "failed":
        return "❌ failed", "—", "—"
    if result.unchanged:
        return "✅ no changes", "0", "no"
    counts = f"+{result.count('+')} ~{result.count('~')} -{result.count('-')}"
    if result.has_security_changes:
        reasons = sorted({r for c in result.security_changes for r in c.security_reasons})
        if result.security_tables and "IAM" not in reasons:
            reasons.insert(0, "IAM")
        return "🔐 changes", counts, "**yes**: " + ", ".join(reasons)
    return "📝 changes", counts, "no"


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _security_section(results: Iterable[EnvironmentResult], budget: _Budget) -> list[str]:
    flagged = [r for r in results if r.status == "ok" and r.has_security_changes]
    if not flagged:
        return []
    lines = ["### 🔐 Security-relevant changes", ""]
    for result in flagged:
        lines.append(f"**`{result.environment}`**")
        lines.append("")
        for change in result.security_changes:
            detail = ", ".join(change.security_properties)
            lines.append(
                f"- `[{change.change}]` `{change.resource_type}` {change.name} — "
                + ", ".join(change.security_reasons)
                + (f" ({detail})" if detail else "")
            )
        if result.security_tables:
            lines += [
                "",
                "<details><summary>IAM and security-group statement changes in "
                f"<code>{result.environment}</code></summary>",
                "",
                _code_block(result.security_tables, budget, f"{result.environment} tables"),
                "",
                "</details>",
            ]
        lines.append("")
    return lines


def _details(result: EnvironmentResult, budget: _Budget) -> list[str]:
    if result.status == "skipped":
        summary = f"<b>{result.environment}</b>: skipped"
        body = result.reason or "skipped"
    elif result.status == "failed":
        summary = f"<b>{result.environment}</b>: failed"
        body = result.reason or "cdk diff failed"
        if result.output:
            body += "\n\n" + _code_block(result.output, budget, result.environment)
    else:
        if result.unchanged:
            summary = f"<b>{result.environment}</b>: no changes"
        else:
            summary = (
                f"<b>{result.environment}</b>: {result.count('+')} added, "
                f"{result.count('~')} modified, {result.count('-')} removed"
                + (
                    f", {len(result.security_changes)} security-relevant"
                    if result.has_security_changes
                    else ""
                )
            )
        body = _code_block(result.output or "(no output)", budget, result.environment)
    return ["<details>", f"<summary>{summary}</summary>", "", body, "", "</details>", ""]


def render(
    results: list[EnvironmentResult],
    *,
    run_url: str = "",
    commit: str = "",
    budget: int = DEFAULT_BUDGET,
) -> str:
    """The whole comment, cutting diff blocks evenly until it fits `budget` characters."""
    state = _Budget(per_block=None)
    text = _render_once(results, state, run_url, commit)
    per_block = (budget - 2_000) // max(1, state.blocks)
    while len(text) > budget and per_block >= MIN_BLOCK:
        state = _Budget(per_block)
        text = _render_once(results, state, run_url, commit)
        per_block = per_block * 4 // 5
    return text


def _render_once(
    results: list[EnvironmentResult], budget: _Budget, run_url: str, commit: str
) -> str:
    lines = [
        MARKER,
        "## `cdk diff` per environment",
        "",
        "| Environment | Result | Resources (+ added ~ modified - removed) | Security-relevant |",
        "|---|---|---|---|",
    ]
    for result in results:
        outcome, counts, security = _summary_cells(result)
        if result.status != "ok" and result.reason:
            outcome += f": {_escape_cell(result.reason)}"
        lines.append(f"| `{result.environment}` | {outcome} | {counts} | {security} |")
    lines.append("")
    lines += _security_section(results, budget)
    lines += ["### Full diffs", ""]
    for result in results:
        lines += _details(result, budget)
    footer = []
    if commit:
        footer.append(f"for {commit[:12]}")
    if run_url:
        footer.append(f"[workflow run]({run_url})")
    if budget.truncated:
        footer.append("cut to fit: " + ", ".join(budget.truncated))
    if footer:
        lines.append("<sub>Updated " + " · ".join(footer) + "</sub>")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results_dir", type=Path)
    parser.add_argument(
        "--environments", required=True, help="JSON list of environment names, in table order"
    )
    parser.add_argument("--run-url", default="")
    parser.add_argument("--commit", default="")
    args = parser.parse_args(argv)
    try:
        names = json.loads(args.environments)
    except json.JSONDecodeError as error:
        parser.error(f"--environments: must be a JSON list of names ({error})")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        parser.error("--environments: must be a JSON list of non-empty names")
    results = [read_result(args.results_dir, name) for name in names]
    sys.stdout.write(render(results, run_url=args.run_url, commit=args.commit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
