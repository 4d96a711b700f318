"""Start the model server, wait for it and serve one request; write what came back as JSON.

Run inside a loopback-only network namespace by `test_model_server_without_network.py`: the
whole life of the server (toolkit start-up, Java frontend, worker, model load, a generation)
happens where only 127.0.0.1 exists, and its Python processes record every attempt to go beyond
it. Usage: `python -m <this module> MODEL_DIR REPORT_PATH`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from constructs_lib.container_environment import model_server_environment
from musicgen_local.model_server import running_model_server
from tests.integration.serving.serving_client import MAX_DURATION_SECONDS, decode_clip, invoke
from tests.support.network_namespace import network_audit_environment, recorded_network_attempts

MODEL_ID = "tiny/musicgen-stereo"
PROBE_REQUEST = {"prompt": "calm lofi beat with piano", "duration": 0.5, "seed": 5}


def main(model_dir: Path, report_path: Path) -> None:
    audit_log = report_path.with_name("network-attempts.jsonl")
    environment = {
        **model_server_environment(model_id=MODEL_ID, max_duration_seconds=MAX_DURATION_SECONDS),
        **network_audit_environment(audit_log),
    }
    with running_model_server(model_dir, env=environment) as url:
        response = invoke(url, PROBE_REQUEST)
    report: dict[str, object] = {
        "status": response.status_code,
        "body": response.text[:2000],
        "network_attempts": recorded_network_attempts(audit_log),
    }
    if response.status_code == 200:
        body = response.json()
        [clip] = body["clips"]
        samples, rate = decode_clip(clip)
        report.update(
            body="(clips)",
            model_id=body["model_id"],
            seed=clip["seed"],
            sample_rate=rate,
            shape=list(samples.shape),
            std=float(samples.std()),
        )
    report_path.write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
