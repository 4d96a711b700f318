"""Records every attempt of this Python process to reach beyond loopback, even a caught one.

Python imports `sitecustomize` at start-up from the first folder on its path that holds one:
putting this folder on PYTHONPATH, with NETWORK_AUDIT_LOG naming a file, makes every Python
process of a model server under test (toolkit wrapper, workers) append one JSON line per attempt
(a name to resolve, an address to connect to) there. A loopback-only namespace makes such an
attempt fail; this makes it visible even when the code catches the failure and carries on.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys

AUDIT_LOG_VARIABLE = "NETWORK_AUDIT_LOG"
_LOG_PATH = os.environ.get(AUDIT_LOG_VARIABLE)
_LOCAL_NAMES = frozenset({"", "localhost", "localhost.localdomain", socket.gethostname()})
_NAME_EVENTS = frozenset(
    {
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
    }
)


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    name = str(host)
    if name in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def _audit_into(log_path: str) -> None:
    def record(event: str, target: object) -> None:
        line = json.dumps({"pid": os.getpid(), "event": event, "target": repr(target)})
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")

    def audit(event: str, args: tuple[object, ...]) -> None:
        if event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple) and not _is_local(address[0]):
                record(event, address)
        elif event in _NAME_EVENTS and not _is_local(args[0]):
            record(event, args[0])

    sys.addaudithook(audit)


if _LOG_PATH:
    _audit_into(_LOG_PATH)
