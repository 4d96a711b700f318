"""The local end-to-end loop of `tests/integration/e2e/`, reused as it is for load and faults."""

from tests.integration.e2e.conftest import local_stack, model_server_url, tiny_model_dir

__all__ = ["local_stack", "model_server_url", "tiny_model_dir"]
