"""Drawing variants of a template: hand-friendly numbers, redrawn until the screen passes.

Every variant has its own stream, Python's Mersenne Twister seeded with an integer taken from
SHA-256 of (seed, variant number), read only through getrandbits, which are the same bits on every
machine and version: the same seed gives the same variants, and variant 7 does not depend on how
many were asked for.
"""

from __future__ import annotations

import copy
import hashlib
import random
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..errors import UserError
from .answers import Answer, ask, quick_reject
from .screen import accident
from .template import Fill, Range, Template, dump

MAX_DRAWS = 200  # per variant; a template that cannot pass the screen in as many is an error


@dataclass(frozen=True)
class Variant:
    """One screened variant: its config (every number written out), derivation and answers."""

    number: int
    config_text: str
    derivation: object  # derivation.build.Derivation
    answers: tuple[Answer, ...]
    draws: int  # how many draws it took


def stream(seed: int, number: int) -> random.Random:
    """The random stream of one variant."""
    digest = hashlib.sha256(f"cnnderive generate {seed} {number}".encode()).digest()
    return random.Random(int.from_bytes(digest, "big"))


def below(rng: random.Random, n: int) -> int:
    """A uniform integer in [0, n), by rejection on getrandbits (an explicit algorithm)."""
    bits = max(1, (n - 1).bit_length())
    while True:
        k = rng.getrandbits(bits)
        if k < n:
            return k


def drawn(rng: random.Random, node: object) -> object:
    """The template's config with every Range and Fill replaced by drawn numbers, in document order."""
    if isinstance(node, Range):
        return node.value(below(rng, node.size))
    if isinstance(node, Fill):
        count = int(np.prod(node.shape))
        flat = [node.range.value(below(rng, node.range.size)) for _ in range(count)]
        return np.array(flat, dtype=object).reshape(node.shape).tolist()
    if isinstance(node, dict):
        return {key: drawn(rng, value) for key, value in node.items()}
    if isinstance(node, list):
        return [drawn(rng, item) for item in node]
    return node


def draw_variant(template: Template, seed: int, number: int, seen: set[str] | None = None, max_work=None) -> Variant:
    """Variant `number` of the template for this seed; a UserError when MAX_DRAWS draws all fail."""
    from ..derivation.build import Derivation

    rng, reason, relative = stream(seed, number), "", float(template.tolerance)
    for attempt in range(1, MAX_DRAWS + 1):
        data = {"seed": below(rng, 2**31), **drawn(rng, template.config)}
        network = _build(data, template, max_work)
        reason = accident(network, template.allow) or quick_reject(network, template.questions, relative)
        if reason is None:
            text = config_text(data, network)
            if seen is not None and text in seen:
                reason = "the same numbers as an earlier variant"
                continue
            derivation = Derivation(network)
            answers, reason = ask(derivation, template.questions, relative)
            if reason is None:
                if seen is not None:
                    seen.add(text)
                return Variant(number, text, derivation, answers, attempt)
    raise UserError(
        f"variant {number}: none of {MAX_DRAWS} draws passed the screen (the last: {reason}); "
        "widen the ranges, or allow the accident (allow: [tie, zero, shared_winner])",
        file=template.source,
    )


def draw_variants(template: Template, count: int, seed: int, max_work=None) -> list[Variant]:
    """`count` screened variants, all different."""
    seen: set[str] = set()
    return [draw_variant(template, seed, number, seen, max_work) for number in range(1, count + 1)]


def config_text(data: dict, network) -> str:
    """The drawn config as YAML with every number written out (left-out ones as the config reader
    drew them from its `seed`), so that `cnnderive explain` on it shows the same variant."""
    full = copy.deepcopy(data)
    del full["seed"]
    values = network.input
    values = values.reshape(values.shape[1:]) if values.ndim == 3 and values.shape[0] == 1 else values
    full["input"] = {"values": _numbers(values)}
    for position, layer in enumerate(network.layers):
        raw = full["layers"][position]
        if network.params[layer.name]:
            raw["params"] = {name: _numbers(_squeezed(value)) for name, value in network.params[layer.name].items()}
    return dump(full)


def _squeezed(value: np.ndarray) -> np.ndarray:
    """A conv weight [1][1][kh][kw] as [kh][kw], as a config may write it."""
    return value.reshape(value.shape[2:]) if value.ndim == 4 and value.shape[:2] == (1, 1) else value


def _numbers(array: np.ndarray) -> list:
    return np.vectorize(Fraction, otypes=[object])(array).tolist()


def _build(data: dict, template: Template, max_work):
    """The network of drawn data, built without a YAML round trip (the written text is checked by
    the tests to load into the same network)."""
    from ..config import LIMITS
    from ..config.build import build
    from ..errors import ConfigError

    try:
        return build(data, template.source, max_work or LIMITS["work"])
    except ConfigError as error:
        error.file = f"{template.source} (as drawn)"
        raise
