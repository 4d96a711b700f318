"""Turn each environment's `cdk diff` output into one pull-request comment (Markdown), and
decide whether the pull request may pass.

Usage: format_diff_comment.py RESULTS_DIR --environments '["dev","prod"]' [--run-url URL]
       [--commit SHA] [--allow-destructive] [--github-output FILE] > comment.md

RESULTS_DIR holds one folder per environment, written by the diff job:
  status         first line `ok` or `failed`; the lines after it say why
  compared-with  first line `deployed` (then the region) or `base-branch` (then the base
                 commit and why there was no AWS role)
  output.txt     what `make diff` / `make diff-base` printed

What a reviewer must not miss comes first: whether the check fails, what each environment
was compared with, then every resource that is destroyed, orphaned or replaced (with what that
means for this stack), then the security-relevant changes, then each environment's full diff
collapsed in its own <details>. A bucket or KMS key destroyed or replaced fails the check
(`blocked=true` in --github-output) unless --allow-destructive (the PR label) is given. The
first line is a hidden marker by which the workflow finds and updates the same comment.
GitHub rejects comments over 65,536 characters, so long diffs are cut to fit, saying so.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cdk_diff_parser import ResourceChange, StackDiff, clean, parse
from diff_against_base import NEW_ENVIRONMENT_PREFIX
from diff_classifier import blocks_merge, meaning, security_categories, security_reasons

MARKER = "<!-- musicgen-cdk-diff -->"
ALLOW_LABEL = "allow-destructive"
COMMENT_LIMIT = 65_536
# Head-room under GitHub's limit for the multi-byte characters of the diff's tree drawing.
DEFAULT_BUDGET = 60_000
STATUSES = ("ok", "failed")
COMPARISONS = ("deployed", "base-branch")
# Below this a cut diff block says too little to be worth showing at all.
MIN_BLOCK = 500


@dataclass(frozen=True)
class Comparison:
    """What the diff compared the pull request with."""

    kind: str = ""
    detail: str = ""
    reason: str = ""

    def cell(self) -> str:
        if self.kind == "deployed":
            return "deployed stack (AWS" + (f", {self.detail})" if self.detail else ")")
        if self.kind == "base-branch":
            return f"base branch `{self.detail[:12]}` (no AWS)" if self.detail else "base branch"
        return "—"


@dataclass(frozen=True)
class EnvironmentResult:
    environment: str
    status: str
    reason: str = ""
    output: str = ""
    diff: StackDiff = field(default_factory=StackDiff)
    comparison: Comparison = field(default_factory=Comparison)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def new_environment(self) -> bool:
        return self.ok and NEW_ENVIRONMENT_PREFIX in self.output

    @property
    def destructive(self) -> tuple[ResourceChange, ...]:
        return self.diff.destructive if self.ok else ()

    @property
    def blocking(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.destructive if blocks_merge(c))

    @property
    def security_changes(self) -> tuple[ResourceChange, ...]:
        return tuple(c for c in self.diff.changes if security_reasons(c)) if self.ok else ()

    @property
    def has_security_changes(self) -> bool:
        return bool(self.security_changes or (self.ok and self.diff.security_tables))


@dataclass
class _Budget:
    """How many characters each code block may keep (None: all), and what was cut."""

    per_block: int | None
    blocks: int = 0
    truncated: list[str] = field(default_factory=list)


def _read_comparison(folder: Path) -> Comparison:
    path = folder / "compared-with"
    if not path.is_file():
        return Comparison()
    kind, detail, reason = ([*path.read_text(encoding="utf-8").splitlines(), "", ""])[:3]
    kind = kind.strip()
    return Comparison(kind if kind in COMPARISONS else "", detail.strip(), reason.strip())


def read_result(results_dir: Path, environment: str) -> EnvironmentResult:
    folder = results_dir / environment
    status_file = folder / "status"
    comparison = _read_comparison(folder)
    if not status_file.is_file():
        return EnvironmentResult(
            environment,
            "failed",
            "no result: the job stopped before cdk diff ran (see the workflow run)",
            comparison=comparison,
        )
    status_line, _, reason = status_file.read_text(encoding="utf-8").partition("\n")
    status = status_line.strip()
    if status not in STATUSES:
        return EnvironmentResult(
            environment,
            "failed",
            f"unreadable status {status!r}; expected one of {STATUSES}",
            comparison=comparison,
        )
    output_file = folder / "output.txt"
    output = (
        clean(output_file.read_text(encoding="utf-8", errors="replace")).strip("\n")
        if output_file.is_file()
        else ""
    )
    return EnvironmentResult(
        environment,
        status,
        reason.strip(),
        output,
        parse(output) if status == "ok" else StackDiff(),
        comparison,
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


def _escape_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _security_cell(result: EnvironmentResult) -> str:
    if not result.has_security_changes:
        return "no"
    categories = sorted({c for r in result.security_changes for c in security_categories(r)})
    if result.diff.security_tables and not categories:
        categories = ["IAM statements"]
    return "**yes**: " + ", ".join(categories)


def _row(result: EnvironmentResult) -> str:
    where = result.comparison.cell()
    if not result.ok:
        outcome = "❌ failed" + (f": {_escape_cell(result.reason)}" if result.reason else "")
        return f"| `{result.environment}` | {where} | {outcome} | — | — | — |"
    if result.diff.unchanged:
        return f"| `{result.environment}` | {where} | ✅ no changes | 0 | 0 | no |"
    diff = result.diff
    outcome = "🆕 new environment" if result.new_environment else "📝 changes"
    destroyed = str(len(result.destructive))
    if result.blocking:
        destroyed = f"**{destroyed}** ({len(result.blocking)} stateful)"
    counts = f"+{diff.count('+')} ~{diff.count('~')} -{diff.count('-')}"
    if diff.template_changes:
        counts += f", {len(diff.template_changes)} outside resources"
    return (
        f"| `{result.environment}` | {where} | {outcome} | {destroyed} | {counts} | "
        f"{_security_cell(result)} |"
    )


def _verdict(results: list[EnvironmentResult], allow_destructive: bool) -> list[str]:
    blocking = [r for r in results if r.blocking]
    if not blocking:
        return []
    where = ", ".join(f"`{r.environment}`" for r in blocking)
    if allow_destructive:
        return [
            f"⚠️ **A bucket or KMS key would be destroyed or replaced** in {where}: allowed by "
            f"the label `{ALLOW_LABEL}`.",
            "",
        ]
    return [
        f"⛔ **This check fails: a bucket or KMS key would be destroyed or replaced** in {where}. "
        f"If that is intended, add the label `{ALLOW_LABEL}` to this pull request; the check "
        "runs again when a label is added or removed.",
        "",
    ]


def _comparison_notes(results: list[EnvironmentResult]) -> list[str]:
    offline = [r for r in results if r.comparison.kind == "base-branch"]
    if not offline:
        return []
    names = ", ".join(f"`{r.environment}`" for r in offline)
    lines = [
        f"*Compared with the base branch* ({names}): both sides synthesized from source and "
        "compared with `cdk diff --template`, without AWS; what is deployed may differ.",
    ]
    reasons = sorted({r.comparison.reason for r in offline if r.comparison.reason})
    lines += [f"No deployed-stack diff because: {_escape_cell(reason)}." for reason in reasons]
    return [*lines, ""]


def _destructive_section(results: Iterable[EnvironmentResult]) -> list[str]:
    flagged = [r for r in results if r.destructive]
    if not flagged:
        return []
    lines = ["### 💥 Destroyed, orphaned or replaced", ""]
    for result in flagged:
        lines += [f"**`{result.environment}`**", ""]
        for change in sorted(result.destructive, key=lambda c: not blocks_merge(c)):
            mark = "⛔ " if blocks_merge(change) else ""
            lines.append(
                f"- {mark}**{change.impact}** `{change.resource_type}` {change.name}: "
                f"{meaning(change)}"
            )
        lines.append("")
    return lines


def _security_section(results: Iterable[EnvironmentResult], budget: _Budget) -> list[str]:
    flagged = [r for r in results if r.has_security_changes]
    if not flagged:
        return []
    lines = ["### 🔐 Security-relevant changes", ""]
    for result in flagged:
        lines += [f"**`{result.environment}`**", ""]
        for change in result.security_changes:
            details: dict[str, list[str]] = {}
            for category, detail in security_reasons(change):
                details.setdefault(category, [])
                if detail != change.resource_type:
                    details[category].append(detail)
            what = ", ".join(
                f"{category} ({', '.join(found)})" if found else category
                for category, found in details.items()
            )
            lines.append(f"- `[{change.change}]` `{change.resource_type}` {change.name}: {what}")
        if result.diff.security_tables:
            lines += [
                "",
                "<details><summary>IAM and security-group statement changes in "
                f"<code>{result.environment}</code></summary>",
                "",
                _code_block(result.diff.security_tables, budget, f"{result.environment} tables"),
                "",
                "</details>",
            ]
        lines.append("")
    return lines


def _details(result: EnvironmentResult, budget: _Budget) -> list[str]:
    if not result.ok:
        summary = f"<b>{result.environment}</b>: failed"
        body = result.reason or "cdk diff failed"
        if result.output:
            body += "\n\n" + _code_block(result.output, budget, result.environment)
    else:
        diff = result.diff
        if diff.unchanged:
            summary = f"<b>{result.environment}</b>: no changes"
        else:
            summary = (
                f"<b>{result.environment}</b>: {diff.count('+')} added, "
                f"{diff.count('~')} modified, {diff.count('-')} removed"
                + (f", {len(result.destructive)} destructive" if result.destructive else "")
                + (
                    f", {len(result.security_changes)} security-relevant"
                    if result.has_security_changes
                    else ""
                )
            )
        body = _code_block(result.output or "(no output)", budget, result.environment)
    return ["<details>", f"<summary>{summary}</summary>", "", body, "", "</details>", ""]


def blocked(results: Iterable[EnvironmentResult], *, allow_destructive: bool) -> bool:
    return not allow_destructive and any(r.blocking for r in results)


def render(
    results: list[EnvironmentResult],
    *,
    run_url: str = "",
    commit: str = "",
    allow_destructive: bool = False,
    budget: int = DEFAULT_BUDGET,
) -> str:
    """The whole comment, cutting diff blocks evenly until it fits `budget` characters."""
    state = _Budget(per_block=None)
    text = _render_once(results, state, run_url, commit, allow_destructive)
    per_block = (budget - 4_000) // max(1, state.blocks)
    while len(text) > budget and per_block >= MIN_BLOCK:
        state = _Budget(per_block)
        text = _render_once(results, state, run_url, commit, allow_destructive)
        per_block = per_block * 4 // 5
    return text


def _render_once(
    results: list[EnvironmentResult],
    budget: _Budget,
    run_url: str,
    commit: str,
    allow_destructive: bool,
) -> str:
    lines = [MARKER, "## `cdk diff` per environment", ""]
    lines += _verdict(results, allow_destructive)
    lines += [
        "| Environment | Compared with | Result | Destroyed or replaced "
        "| Resources (+ added ~ modified - removed) | Security-relevant |",
        "|---|---|---|---|---|---|",
    ]
    lines += [_row(result) for result in results]
    lines.append("")
    lines += _comparison_notes(results)
    lines += _destructive_section(results)
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
    parser.add_argument(
        "--allow-destructive",
        action="store_true",
        help=f"the pull request has the label {ALLOW_LABEL}",
    )
    parser.add_argument("--github-output", type=Path, help="append blocked=true|false to this file")
    args = parser.parse_args(argv)
    try:
        names = json.loads(args.environments)
    except json.JSONDecodeError as error:
        parser.error(f"--environments: must be a JSON list of names ({error})")
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        parser.error("--environments: must be a JSON list of non-empty names")
    results = [read_result(args.results_dir, name) for name in names]
    allow = args.allow_destructive
    sys.stdout.write(
        render(results, run_url=args.run_url, commit=args.commit, allow_destructive=allow)
    )
    if args.github_output:
        is_blocked = blocked(results, allow_destructive=allow)
        with args.github_output.open("a", encoding="utf-8") as output:
            output.write(f"blocked={'true' if is_blocked else 'false'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
