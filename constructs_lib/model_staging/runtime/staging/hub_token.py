"""The optional Hub token, read from a Secrets Manager secret (gated or private models)."""

from __future__ import annotations

import json
from typing import Any

_JSON_KEYS = ("token", "HF_TOKEN", "hf_token")


def read_hub_token(secrets_manager: Any, secret_name: str) -> str:
    """The token stored as the secret's plain string, or under one of `_JSON_KEYS` in JSON."""
    value = secrets_manager.get_secret_value(SecretId=secret_name).get("SecretString")
    if not value or not value.strip():
        raise ValueError(f"hub token secret {secret_name}: must hold a non-empty SecretString")
    value = value.strip()
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            raise ValueError(f"hub token secret {secret_name}: invalid JSON") from None
        tokens = [document[key] for key in _JSON_KEYS if isinstance(document.get(key), str)]
        if len(tokens) != 1 or not tokens[0].strip():
            raise ValueError(
                f"hub token secret {secret_name}: a JSON secret must hold exactly one of the "
                f"string keys {', '.join(_JSON_KEYS)}"
            )
        return tokens[0].strip()
    return value
