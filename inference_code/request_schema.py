"""The one schema of a generation request: fields, defaults, rules, and the legacy payload shape.

`GenerationOptions` describes every optional field once (JSON type, default, bounds, help); the
handler validates with it, the client builds its payloads from it, the CLI generates its flags
from it, and a test holds the README's request table to it. Standard library only: it ships in
the container's `code/` and is imported by the client too.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from typing import Any

MAX_PROMPTS = 8
MAX_PROMPT_CHARS = 2000
SEED_LIMIT = 2**32
DEFAULT_DURATION_SECONDS = 10.0
# MusicGen's codec makes 50 frames per second: nothing shorter than one frame can be generated.
MIN_DURATION_SECONDS = 0.02
# The seed sample counted length in decoder tokens at MusicGen's 50 frames per second.
LEGACY_TOKENS_PER_SECOND = 50
# Bounds that keep every knob inside what generation survives in half precision: a guidance
# scale or an inverse temperature far beyond these overflows the logits to inf/nan.
MAX_GUIDANCE_SCALE = 20.0
MIN_TEMPERATURE = 0.05
MAX_TEMPERATURE = 10.0
# Every MusicGen checkpoint's codebook size; the handler checks the served model's own size.
MAX_TOP_K = 2048
# Commas, arrays and objects a body may hold: a real request has a few dozen (and at most
# 8 prompts of 2000 characters), while a body of millions of `[]` would cost gigabytes once
# decoded. Base64 audio holds none of these characters.
MAX_JSON_SEPARATORS = 20_000
FORMATS = ("wav", "flac")
NORMALIZATIONS = ("peak", "rms", "none")
DEFAULT_GUIDANCE_SCALE = 3.0
DEFAULT_TEMPERATURE = 1.0
DEFAULT_TOP_K = 250
DEFAULT_TOP_P = 0.0
DEFAULT_FORMAT = "wav"
DEFAULT_NORMALIZE = "peak"


class RequestValidationError(ValueError):
    """A request field broke a rule; the message reads `field: rule (got value)`."""

    def __init__(self, field: str, rule: str, got: Any = None, *, show_got: bool = True) -> None:
        self.field = field
        self.rule = rule
        self.got = got
        message = f"{field}: {rule}"
        if show_got:
            message += f" (got {_shorten(got)})"
        super().__init__(message)


@dataclass(frozen=True)
class GenerationRequest:
    """A validated request, every field resolved (the handler's view of it)."""

    prompts: tuple[str, ...]
    duration: float = DEFAULT_DURATION_SECONDS
    guidance_scale: float = DEFAULT_GUIDANCE_SCALE
    temperature: float = DEFAULT_TEMPERATURE
    top_k: int = DEFAULT_TOP_K
    top_p: float = DEFAULT_TOP_P
    do_sample: bool = True
    seed: int | None = None
    format: str = DEFAULT_FORMAT
    normalize: str = DEFAULT_NORMALIZE
    melody: bytes | None = None
    audio_prompt: bytes | None = None
    include_prompt: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Bound:
    """A numeric interval; `describe` is the rule text users read."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def accepts(self, value: float) -> bool:
        if self.low is not None and (
            value < self.low or (value == self.low and not self.low_inclusive)
        ):
            return False
        return not (
            self.high is not None
            and (value > self.high or (value == self.high and not self.high_inclusive))
        )

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.low_inclusive else '>'} {_number_text(self.low)}")
        if self.high is not None:
            parts.append(f"{'<=' if self.high_inclusive else '<'} {_number_text(self.high)}")
        return "must be " + " and ".join(parts)


def _number(bound: Bound) -> Callable[[str, Any], float]:
    def parse(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RequestValidationError(name, "must be a number", value)
        # An int is compared exactly: a 4000-digit one overflows float() and math.isfinite.
        if isinstance(value, float) and not math.isfinite(value):
            raise RequestValidationError(name, "must be a finite number", value)
        if not bound.accepts(value):
            raise RequestValidationError(name, bound.describe(), value)
        return float(value)

    return parse


def _integer(bound: Bound) -> Callable[[str, Any], int]:
    def parse(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RequestValidationError(name, "must be an integer", value)
        if not bound.accepts(value):
            raise RequestValidationError(name, bound.describe(), value)
        return value

    return parse


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise RequestValidationError(name, "must be true or false", value)
    return value


def _choice(options: tuple[str, ...]) -> Callable[[str, Any], str]:
    def parse(name: str, value: Any) -> str:
        if not isinstance(value, str) or value.lower() not in options:
            raise RequestValidationError(name, f"must be one of {', '.join(options)}", value)
        return value.lower()

    return parse


def _audio(name: str, value: Any) -> bytes:
    rule = "must be a base64-encoded WAV or FLAC file"
    if not isinstance(value, str) or not value.strip():
        raise RequestValidationError(name, rule, value)
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestValidationError(name, rule + " (not valid base64)", value) from None
    if not decoded:
        raise RequestValidationError(name, rule + " (empty)", value)
    return decoded


def _prompt(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise RequestValidationError(name, "must be a string", value)
    _require_unicode(name, value)
    text = value.strip()
    if not text:
        raise RequestValidationError(name, "must not be blank", value)
    if len(text) > MAX_PROMPT_CHARS:
        raise RequestValidationError(
            name, f"must be at most {MAX_PROMPT_CHARS} characters after trimming", len(text)
        )
    return text


def _require_unicode(name: str, text: str) -> None:
    """JSON escapes can spell lone surrogates (`"\\ud800"`), which no tokenizer can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise RequestValidationError(
            name,
            f"must be valid Unicode text (a lone surrogate at position {error.start})",
            show_got=False,
        ) from None


def _prompt_list(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RequestValidationError(name, f"must be a list of 1 to {MAX_PROMPTS} strings", value)
    if not 1 <= len(value) <= MAX_PROMPTS:
        raise RequestValidationError(name, f"must hold 1 to {MAX_PROMPTS} prompts", len(value))
    return tuple(_prompt(f"{name}[{index}]", item) for index, item in enumerate(value))


class OptionKind(Enum):
    """The JSON type of an optional field, which decides how it is read."""

    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    AUDIO = "base64 audio"


@dataclass(frozen=True)
class RequestOption:
    """How one optional request field is read, and what users are told about it."""

    kind: OptionKind
    help: str
    default: float | int | bool | str | None = None
    # What leaving the field out means where there is no fixed default.
    default_text: str = "none"
    bound: Bound | None = None
    choices: tuple[str, ...] = ()
    # Also accepted inside the seed sample's `generation_params`.
    legacy: bool = False

    def parse(self, name: str, value: Any) -> Any:
        """The checked value of a raw JSON `value`, or RequestValidationError naming `name`."""
        match self.kind:
            case OptionKind.NUMBER:
                return _number(self.bound or Bound())(name, value)
            case OptionKind.INTEGER:
                return _integer(self.bound or Bound())(name, value)
            case OptionKind.BOOLEAN:
                return _boolean(name, value)
            case OptionKind.CHOICE:
                return _choice(self.choices)(name, value)
            case OptionKind.AUDIO:
                return _audio(name, value)

    def to_json(self, value: float | int | bool | str | bytes) -> float | int | bool | str:
        """`value` as the request body carries it: audio as base64 text."""
        if isinstance(value, bytes):
            return base64.b64encode(value).decode("ascii")
        return value


_OPTION = "request_option"
# The upper bound is the endpoint's own limit, known only where the request is checked.
_DURATION_BOUND = Bound(low=0.0, low_inclusive=False)


def _option(option: RequestOption) -> Any:
    # Runs while the class below is defined, at import, before mutmut can switch a mutant on; a
    # wrong field here fails every test of `GenerationOptions` (tried by hand: KeyError at import,
    # or a constructor that needs every field).
    return field(default=None, metadata={_OPTION: option})  # pragma: no mutate


@dataclass(frozen=True)
class GenerationOptions:
    """Every optional field of a request, described once; None leaves it to the endpoint.

    `to_payload(prompt)` is the JSON request body; `OPTIONS` holds each field's description.
    """

    duration: float | None = _option(
        RequestOption(
            OptionKind.NUMBER,
            "seconds of audio per prompt, up to the endpoint's MaxDurationSeconds",
            DEFAULT_DURATION_SECONDS,
            bound=_DURATION_BOUND,
        )
    )
    guidance_scale: float | None = _option(
        RequestOption(
            OptionKind.NUMBER,
            "classifier-free guidance, 1 turns it off",
            DEFAULT_GUIDANCE_SCALE,
            bound=Bound(low=1.0, high=MAX_GUIDANCE_SCALE),
            legacy=True,
        )
    )
    temperature: float | None = _option(
        RequestOption(
            OptionKind.NUMBER,
            "sampling temperature",
            DEFAULT_TEMPERATURE,
            bound=Bound(low=MIN_TEMPERATURE, high=MAX_TEMPERATURE),
            legacy=True,
        )
    )
    top_k: int | None = _option(
        RequestOption(
            OptionKind.INTEGER,
            "sample among the k likeliest codes, 0 = off",
            DEFAULT_TOP_K,
            bound=Bound(low=0, high=MAX_TOP_K),
            legacy=True,
        )
    )
    top_p: float | None = _option(
        RequestOption(
            OptionKind.NUMBER,
            "nucleus sampling, 0 = off",
            DEFAULT_TOP_P,
            bound=Bound(low=0.0, high=1.0),
            legacy=True,
        )
    )
    do_sample: bool | None = _option(
        RequestOption(
            OptionKind.BOOLEAN, "sample; false decodes greedily, ignoring seeds", True, legacy=True
        )
    )
    seed: int | None = _option(
        RequestOption(
            OptionKind.INTEGER,
            "clip i is seeded with seed + i; same seed, same audio",
            default_text="drawn",
            bound=Bound(low=0, high=SEED_LIMIT, high_inclusive=False),
        )
    )
    format: str | None = _option(
        RequestOption(OptionKind.CHOICE, "16-bit PCM audio format", DEFAULT_FORMAT, choices=FORMATS)
    )
    normalize: str | None = _option(
        RequestOption(
            OptionKind.CHOICE,
            "loudness normalisation",
            DEFAULT_NORMALIZE,
            choices=NORMALIZATIONS,
        )
    )
    melody: bytes | None = _option(
        RequestOption(OptionKind.AUDIO, "WAV/FLAC melody to follow (melody models only)")
    )
    audio_prompt: bytes | None = _option(
        RequestOption(OptionKind.AUDIO, "WAV/FLAC audio the clip continues")
    )
    include_prompt: bool | None = _option(
        RequestOption(
            OptionKind.BOOLEAN,
            "start the clip with the continued part of the audio prompt",
            False,
        )
    )

    def to_payload(self, prompt: str | Sequence[str]) -> dict[str, Any]:
        """The JSON request for `prompt` (a string, or a list of them) with these options."""
        payload: dict[str, Any] = (
            {"prompt": prompt} if isinstance(prompt, str) else {"prompts": list(prompt)}
        )
        for name, option in OPTIONS.items():
            value = getattr(self, name)
            if value is not None:
                payload[name] = option.to_json(value)
        return payload


OPTIONS: Mapping[str, RequestOption] = {
    spec.name: spec.metadata[_OPTION] for spec in fields(GenerationOptions)
}
_PROMPT_FIELDS = ("prompt", "prompts", "texts")
LEGACY_FIELDS = ("texts", "generation_params", "bucket_name")
LEGACY_GENERATION_PARAMS = (
    "max_new_tokens",
    *(name for name, option in OPTIONS.items() if option.legacy),
)
ACCEPTED_FIELDS = ("prompt", "prompts", *OPTIONS, *LEGACY_FIELDS)


def load_json_body(text: str) -> Any:
    """Decode a request body, or raise one RequestValidationError naming `body`.

    The separator count is bounded before decoding, so a body costs memory in proportion to its
    size; Python's own failures (nesting past the recursion limit, integers past
    `sys.get_int_max_str_digits()`) become the same kind of message as a syntax error.
    """
    if not text.strip():
        raise RequestValidationError("body", "must not be empty", show_got=False)
    separators = text.count(",") + text.count("[") + text.count("{")
    if separators > MAX_JSON_SEPARATORS:
        raise RequestValidationError(
            "body",
            f"must hold at most {MAX_JSON_SEPARATORS} commas, arrays and objects",
            separators,
        )
    try:
        # NaN and Infinity parse here so the schema can name the field that holds them.
        return json.loads(text)
    except json.JSONDecodeError as error:
        reason = f"{error.msg} at line {error.lineno} column {error.colno}"
    except RecursionError:
        reason = "nested too deeply"
    except ValueError:
        reason = f"a number has more than {sys.get_int_max_str_digits()} digits"
    raise RequestValidationError("body", f"must be valid JSON ({reason})", show_got=False)


def parse_request(
    payload: Any,
    *,
    max_duration_seconds: float,
    is_melody_model: bool | None = None,
) -> GenerationRequest:
    """Validate a decoded JSON request into a `GenerationRequest`, or raise RequestValidationError.

    `is_melody_model=None` skips the model-dependent check (the client does not know the model).
    """
    if not isinstance(max_duration_seconds, int | float) or not max_duration_seconds > 0:
        raise ValueError(f"max_duration_seconds must be > 0 (got {max_duration_seconds!r})")
    if not isinstance(payload, Mapping):
        raise RequestValidationError("body", "must be a JSON object", type(payload).__name__)
    unknown = sorted(str(key) for key in payload if key not in ACCEPTED_FIELDS)
    if unknown:
        raise RequestValidationError(
            _field_name(unknown[0]),
            f"is not a known field; accepted fields are {', '.join(ACCEPTED_FIELDS)}",
            show_got=False,
        )
    warnings: list[str] = []
    values: dict[str, Any] = {"prompts": _prompts(payload)}
    if "duration" in payload:
        bound = replace(_DURATION_BOUND, high=float(max_duration_seconds))
        values["duration"] = _number(bound)("duration", payload["duration"])
        if values["duration"] < MIN_DURATION_SECONDS:
            raise RequestValidationError(
                "duration",
                f"must be at least one audio frame, {MIN_DURATION_SECONDS:g} s",
                payload["duration"],
            )
    legacy = _legacy_generation_params(payload, max_duration_seconds)
    for name, option in OPTIONS.items():
        if name != "duration" and payload.get(name) is not None:
            values[name] = option.parse(name, payload[name])
    for name, value in legacy.items():
        if name in values:
            raise RequestValidationError(
                f"generation_params.{'max_new_tokens' if name == 'duration' else name}",
                f"conflicts with the top-level field {name}; give it once",
                show_got=False,
            )
        values[name] = value
    if "bucket_name" in payload:
        warnings.append(
            "bucket_name is ignored: SageMaker writes results to the endpoint's async output path"
        )
    values.setdefault("duration", min(DEFAULT_DURATION_SECONDS, float(max_duration_seconds)))
    request = GenerationRequest(**values, warnings=tuple(warnings))
    if is_melody_model is not None:
        check_model_support(request, is_melody_model=is_melody_model)
    return request


def check_model_support(
    request: GenerationRequest, *, is_melody_model: bool, codebook_size: int | None = None
) -> None:
    """Reject fields the served model cannot honour (known only where the model is)."""
    if request.melody is not None and not is_melody_model:
        raise RequestValidationError(
            "melody", "is only supported by melody models (musicgen-melody*)", show_got=False
        )
    # The default (MusicGen's 250) stays valid on a model with fewer codes: it then samples
    # from all of them, as transformers clamps top_k to the vocabulary.
    if (
        codebook_size is not None
        and request.top_k > codebook_size
        and request.top_k != GenerationRequest.top_k
    ):
        raise RequestValidationError(
            "top_k", f"must be <= {codebook_size}, this model's codebook size", request.top_k
        )


def _prompts(payload: Mapping[str, Any]) -> tuple[str, ...]:
    given = [name for name in _PROMPT_FIELDS if name in payload]
    if len(given) != 1:
        raise RequestValidationError(
            "prompt",
            "give exactly one of prompt (a string) or prompts (a list of strings)",
            given,
            show_got=bool(given),
        )
    name = given[0]
    if name == "prompt":
        return (_prompt(name, payload[name]),)
    return _prompt_list(name, payload[name])


def _legacy_generation_params(
    payload: Mapping[str, Any], max_duration_seconds: float
) -> dict[str, Any]:
    if "bucket_name" in payload and not isinstance(payload["bucket_name"], str | None):
        raise RequestValidationError("bucket_name", "must be a string", payload["bucket_name"])
    params = payload.get("generation_params")
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise RequestValidationError("generation_params", "must be a JSON object", params)
    unknown = sorted(str(key) for key in params if key not in LEGACY_GENERATION_PARAMS)
    if unknown:
        raise RequestValidationError(
            f"generation_params.{_field_name(unknown[0])}",
            f"is not a known field; accepted are {', '.join(LEGACY_GENERATION_PARAMS)}",
            show_got=False,
        )
    values: dict[str, Any] = {}
    if "max_new_tokens" in params:
        max_tokens = math.floor(max_duration_seconds * LEGACY_TOKENS_PER_SECOND)
        tokens = _integer(Bound(low=1, high=max_tokens))(
            "generation_params.max_new_tokens", params["max_new_tokens"]
        )
        values["duration"] = tokens / LEGACY_TOKENS_PER_SECOND
    for name, option in OPTIONS.items():
        if option.legacy and params.get(name) is not None:
            values[name] = option.parse(f"generation_params.{name}", params[name])
    return values


def _number_text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shorten(value: Any) -> str:
    """At most 60 characters of `value`, costing no more than that however large it is."""
    if isinstance(value, bool) or value is None:
        text = repr(value)
    elif isinstance(value, int) and value.bit_length() > 192:
        text = f"an integer of {value.bit_length()} bits"
    elif isinstance(value, int | float):
        text = str(value)
    elif isinstance(value, str):
        text = repr(value[:61])
    elif isinstance(value, list | tuple | Mapping):
        text = f"a {type(value).__name__} of {len(value)} item(s)"
    else:
        text = type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _field_name(key: Any) -> str:
    """An unknown key as a message may quote it: escaped and short."""
    return _shorten(str(key)).strip("'\"")
