"""Run a command in a fresh Linux network namespace that has nothing but loopback.

`loopback_only_command(argv)` wraps `argv` so that it runs under `unshare --net` (plus
`--map-root-user` when the caller is not root), and this module, run as `__main__` inside the new
namespace, brings `lo` up, checks that loopback is all there is, and then execs `argv`. Inside,
127.0.0.1 works and every other address fails at once with "network is unreachable", name
resolution included: a program that needs the network at any step fails there.

`network_audit_environment(log)` makes Python processes also record each attempt to go beyond
loopback, so an attempt whose failure the code catches and ignores is still seen.

`namespace_unavailable_reason()` says why no namespace can be made here (no `unshare`, user
namespaces switched off, a container without the privilege), or None when one can.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.support.network_audit.sitecustomize import AUDIT_LOG_VARIABLE

REPO_ROOT = Path(__file__).resolve().parents[2]
# Its `sitecustomize` records, per Python process, every attempt to go beyond loopback.
AUDIT_FOLDER = Path(__file__).resolve().parent / "network_audit"
# <linux/sockios.h> and <linux/if.h>: read and write an interface's flags; IFF_UP brings it up.
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = struct.Struct("16sH22x")  # struct ifreq: name, then ifr_flags in the union
# TEST-NET-1 (RFC 5737): documentation-only, never routed; outside loopback nothing answers.
OUTSIDE_ADDRESS = ("192.0.2.1", 80)
PROBE_TIMEOUT_SECONDS = 30


class NamespaceError(RuntimeError):
    """The namespace was made but is not loopback-only, or loopback cannot be brought up."""


def _unshare_prefix() -> list[str]:
    unshare = shutil.which("unshare") or "unshare"
    # An unprivileged caller needs a user namespace, in which it is root, to own a network one.
    return [unshare, "--net"] if os.geteuid() == 0 else [unshare, "--net", "--map-root-user"]


def loopback_only_command(argv: Sequence[str]) -> list[str]:
    """`argv` run in a new network namespace with only `lo`, up (run from the repository root)."""
    return [*_unshare_prefix(), sys.executable, "-m", __name__, "--", *argv]


def network_audit_environment(log_path: Path) -> dict[str, str]:
    """Variables that make every Python process started with them log its network attempts."""
    search_path = [str(AUDIT_FOLDER), os.environ.get("PYTHONPATH", "")]
    return {
        "PYTHONPATH": os.pathsep.join(part for part in search_path if part),
        AUDIT_LOG_VARIABLE: str(log_path),
    }


def recorded_network_attempts(log_path: Path) -> list[dict[str, object]]:
    """What the audited processes tried to reach, one entry per attempt (none: no file)."""
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]


def namespace_unavailable_reason() -> str | None:
    """Why a loopback-only namespace cannot be made on this machine, or None if it can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces are Linux-only (this is {sys.platform})"
    if shutil.which("unshare") is None:
        return "no `unshare` command (util-linux) on PATH"
    try:
        probe = subprocess.run(
            loopback_only_command([sys.executable, "-c", ""]),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`unshare --net` could not run: {error}"
    if probe.returncode != 0:
        words = (probe.stderr or probe.stdout).strip()[-500:]
        return f"`{' '.join(_unshare_prefix())}` failed with status {probe.returncode}: {words}"
    return None


def bring_loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = _IFREQ.pack(b"lo", 0)
        _, flags = _IFREQ.unpack(fcntl.ioctl(sock, _SIOCGIFFLAGS, request))
        fcntl.ioctl(sock, _SIOCSIFFLAGS, _IFREQ.pack(b"lo", flags | _IFF_UP))


def check_loopback_only() -> None:
    """Raise unless `lo` is the only interface and an outside address is unreachable."""
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        raise NamespaceError(f"expected only the loopback interface, found {interfaces}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        try:
            sock.connect(OUTSIDE_ADDRESS)
        except OSError as error:
            if error.errno != errno.ENETUNREACH:
                raise NamespaceError(
                    f"connecting to {OUTSIDE_ADDRESS[0]} failed with {error!r}, "
                    "not 'network is unreachable': is this namespace really loopback-only?"
                ) from error
        else:
            raise NamespaceError(f"{OUTSIDE_ADDRESS[0]} is reachable: this is not loopback-only")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname(), timeout=5):
            pass


def main(argv: Sequence[str]) -> None:
    if not argv or argv[0] != "--" or len(argv) < 2:
        raise SystemExit(f"usage: python -m {__name__} -- COMMAND [ARG...]")
    bring_loopback_up()
    check_loopback_only()
    command = list(argv[1:])
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
