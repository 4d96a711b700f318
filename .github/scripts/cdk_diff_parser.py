"""Read the text `cdk diff` prints for one stack into structured changes.

What the CLI prints (aws-cdk's diff formatter, the CLI version pinned in package.json):

  [~] AWS::S3::Bucket ModelArtifacts/Bucket ModelArtifactsBucket2C3831B7 replace
   ├─ [~] BucketName (requires replacement)
   │   ├─ [-] old
   │   └─ [+] new
   └─ [~] LifecycleConfiguration
       └─ [~] .Rules:
           └─ @@ -1,6 +1,6 @@
              [-]     "ExpirationInDays": 30,

A resource line is `[+|~|-|←] TYPE [CONSTRUCT-PATH] LOGICAL-ID [IMPACT] [(OR move …)]`, where
IMPACT is `replace`, `may be replaced`, `destroy`, `orphan` or `import`; the path is missing
when the template carries no `aws:cdk:path` metadata. Each changed top-level property follows
on a `├─`/`└─` line, `(requires replacement)` or `(may cause replacement)` after its name; what
is nested under it names the keys that changed (`.Rules:`, `Added: .KmsKeyId`,
`"ExpirationInDays":`). Other
template sections (Description, Parameters, Outputs, Conditions, …) print `[~] KIND NAME: …`.
Standard library only: the workflow runs this before any virtualenv exists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

IMPACTS = ("may be replaced", "replace", "destroy", "orphan", "import")
DESTRUCTIVE_IMPACTS = frozenset({"may be replaced", "replace", "destroy", "orphan"})

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# jsii (the bridge the Python CDK runs on) prints a banner of byte-string lines about the Node
# version to the same stream, sometimes in the middle of a diff line.
_JSII_BANNER = re.compile(r"b'!![^\n]*?\\n'\n?")
_RESOURCE = re.compile(r"^\[(?P<change>[+~←-])\] (?P<type>[A-Za-z0-9]+::\S+) (?P<rest>.+)$")
_MOVE = re.compile(r"\s*\(OR move .*\)$")
_PROPERTY = re.compile(
    r"^ [├└]─ \[(?P<change>[+~-])\] (?P<name>[^\s(]+)"
    r"(?: \((?P<replacement>requires replacement|may cause replacement)\))?$"
)
# `[~] .Key:` (changed inside), `[+] Added: .Key`, `[-] Removed: .Key`.
_NESTED_KEY = re.compile(r"\[[+~-]\] (?:Added: |Removed: )?\.(?P<key>.+?):?$")
_JSON_KEY = re.compile(r"\[[+-]\]\s+\"(?P<key>[^\"]+)\":")
_TEMPLATE_CHANGE = re.compile(r"^\[(?P<change>[+~-])\] (?P<section>[A-Za-z]+) (?P<name>[^\s:]+)")
_SECURITY_TABLE_TITLES = ("IAM Statement Changes", "IAM Policy Changes", "Security Group Changes")
_SECURITY_TABLE_END = "(NOTE: There may be security-related changes"
_NO_DIFFERENCES = ("There were no differences", "Number of stacks with differences: 0")
# Resource attributes that change nothing in AWS.
NOISE_PROPERTIES = frozenset({"Metadata"})


@dataclass(frozen=True)
class PropertyChange:
    name: str
    change: str
    replacement: str = ""
    changed_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ResourceChange:
    change: str
    resource_type: str
    logical_id: str
    path: str = ""
    impact: str = ""
    properties: tuple[PropertyChange, ...] = ()

    @property
    def name(self) -> str:
        """How the comment names the resource: its construct path, else its logical id."""
        return self.path or self.logical_id

    @property
    def meaningful_properties(self) -> tuple[PropertyChange, ...]:
        return tuple(p for p in self.properties if p.name not in NOISE_PROPERTIES)

    @property
    def is_noise(self) -> bool:
        """A modification that only touches construct metadata changes nothing in AWS."""
        return self.change == "~" and not self.meaningful_properties

    @property
    def is_destructive(self) -> bool:
        return self.impact in DESTRUCTIVE_IMPACTS


@dataclass(frozen=True)
class TemplateChange:
    """A change outside Resources: the Description, a Parameter, Output, Condition, …"""

    change: str
    section: str
    name: str


@dataclass(frozen=True)
class StackDiff:
    resources: tuple[ResourceChange, ...] = ()
    template_changes: tuple[TemplateChange, ...] = ()
    security_tables: str = ""
    no_differences: bool = False

    @property
    def changes(self) -> tuple[ResourceChange, ...]:
        return tuple(r for r in self.resources if not r.is_noise)

    @property
    def destructive(self) -> tuple[ResourceChange, ...]:
        return tuple(r for r in self.changes if r.is_destructive)

    @property
    def unchanged(self) -> bool:
        """Nothing would change in AWS: only construct metadata differs, or nothing at all."""
        return self.no_differences or not (
            self.changes or self.template_changes or self.security_tables
        )

    def count(self, change: str) -> int:
        return sum(1 for r in self.changes if r.change == change)


@dataclass
class _OpenResource:
    header: ResourceChange
    properties: list[PropertyChange] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)

    def add_property(self, prop: PropertyChange) -> None:
        self._close_property()
        self.properties.append(prop)

    def _close_property(self) -> None:
        if self.properties and self.keys:
            last = self.properties[-1]
            self.properties[-1] = PropertyChange(
                last.name, last.change, last.replacement, frozenset(self.keys)
            )
        self.keys = set()

    def close(self) -> ResourceChange:
        self._close_property()
        return ResourceChange(
            self.header.change,
            self.header.resource_type,
            self.header.logical_id,
            self.header.path,
            self.header.impact,
            tuple(self.properties),
        )


def clean(text: str) -> str:
    """Drop colour codes, jsii banners and carriage returns."""
    text = _JSII_BANNER.sub("", text.replace("\r\n", "\n"))
    return _ANSI.sub("", text).replace("\r", "")


def _resource_header(match: re.Match[str]) -> ResourceChange:
    rest = _MOVE.sub("", match["rest"]).strip()
    impact = next((i for i in IMPACTS if rest.endswith(" " + i)), "")
    if impact:
        rest = rest[: -len(impact) - 1]
    words = rest.split(" ")
    return ResourceChange(match["change"], match["type"], words[-1], " ".join(words[:-1]), impact)


def _template_change(line: str) -> TemplateChange | None:
    match = _TEMPLATE_CHANGE.match(line)
    # The CLI's own bookkeeping (CDKMetadata) says nothing about the stack.
    if not match or match["name"].startswith("CDKMetadata"):
        return None
    return TemplateChange(match["change"], match["section"], match["name"])


def parse(text: str) -> StackDiff:
    """One stack's `cdk diff` output (cleaned) as a StackDiff."""
    resources: list[ResourceChange] = []
    template_changes: list[TemplateChange] = []
    current: _OpenResource | None = None
    for line in text.splitlines():
        resource = _RESOURCE.match(line)
        if resource:
            if current:
                resources.append(current.close())
            current = _OpenResource(_resource_header(resource))
            continue
        if current and line.startswith((" ", "│")):
            prop = _PROPERTY.match(line)
            if prop:
                current.add_property(
                    PropertyChange(prop["name"], prop["change"], prop["replacement"] or "")
                )
            elif current.properties:
                stripped = line.lstrip(" │├└─")
                key = _NESTED_KEY.match(stripped) or _JSON_KEY.match(stripped)
                if key:
                    current.keys.add(key["key"])
            continue
        if current and line:
            resources.append(current.close())
            current = None
        template_change = _template_change(line)
        if template_change:
            template_changes.append(template_change)
    if current:
        resources.append(current.close())
    return StackDiff(
        tuple(resources),
        tuple(template_changes),
        security_tables(text),
        any(phrase in text for phrase in _NO_DIFFERENCES),
    )


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
