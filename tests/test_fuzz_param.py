"""Property-based fuzzing of `--param` parsing (names.parse_element / parse_parameter).

Any string gives either a (tensor, index) that exists in the network, or a UserError with a
one-line message; never another exception, and an answer within the harness's time bound.
`CNNDERIVE_FUZZ=long` for many more cases; see tests/fuzz_support.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnderive.config import load
from cnnderive.derivation.names import parse_element, parse_parameter, tensors
from tests.conftest import CONFIGS
from tests.fuzz_support import LONG, Outcome, fuzz_settings, judge, note, run_case

NETWORKS = {
    name: load(CONFIGS / name)
    for name in [
        "seed000_tied_maxpool.yaml",
        "multichannel_stride_pad.yaml",
        "sigmoid_bce.yaml",
        "seed001_conv_conv_mse.yaml",
    ]
}
NAMES = sorted({name for network in NETWORKS.values() for name in tensors(network)})

INJECTIONS = [
    "__import__('os').system('id')",
    "conv1.weight[0,0,1,1]; rm -rf /",
    "$(id)",
    "`id`",
    "conv1.weight[__import__('os')]",
    "conv1.weight[0,0,1,1] or 1==1",
    "' OR '1'='1",
    "{{7*7}}",
    "${jndi:ldap://x}",
    "%s%s%s%n",
    "../../etc/passwd",
    "conv1.__class__",
    "conv1.weight.__dict__",
    "conv1.weight[0][0]",
    "conv1.weight[0,0,1,1]]",
    "[[0]]",
    "conv1..weight",
    "conv1.weight[0,0,1,1",
    "conv1.weight0,0,1,1]",
    "conv1.weight[(0,0,1,1)]",
    "conv1.weight[0:1]",
    "conv1.weight[...]",
    "conv1.weight[-0,0,1,1]",
    "conv1.weight[0x0,0,1,1]",
    "conv1.weight[0.0,0,1,1]",
    "conv1.weight[1e0,0,1,1]",
    "conv1.weight[٠,٠,١,١]",
    "conv1.weight[0,0,1,1]\n",
    "conv1.weight\x00",
    "conv1.weight[0,\u00a00,1,1]",
    "conv1.weight[0,0,1,1]\u202e",
    "ｃｏｎｖ１.weight",
    "conv1.weighT",
    "CONV1.WEIGHT",
    "loss[0]",
    "loss[]",
    "input[0,0,0]",
    "target[1]",
    "fc.output[0]",
    "fc.bias[" + "9" * 5000 + "]",
    "fc.bias[" + "9" * 4300 + "]",
    "fc.bias[-1]",
    "fc.bias[+1]",
    "fc.bias[1_0]",
    "fc.bias[ 1 ]",
    "fc.bias[1,]",
    "fc.bias[,1]",
    "fc.bias[]",
    "fc.bias[[1]]",
    "",
    " ",
    "\t",
    ".",
    "..",
    "[",
    "]",
    "[]",
    "a" * 10000,
    "fc." + "b" * 5000,
]


@st.composite
def param_strings(draw, names=tuple(NAMES)):
    name = draw(st.sampled_from(names) | st.sampled_from(["conv1", "fc", "weight", "bias", "conv1.", ".weight"]))
    if draw(st.booleans()):
        name = name.replace(".", draw(st.sampled_from([".", "..", " . ", "·", "_", ""])), 1)
    if draw(st.integers(0, 3)) == 0:
        return name + draw(st.text(max_size=6))
    index = draw(
        st.lists(
            st.one_of(
                st.integers(0, 4), st.integers(-3, 3), st.sampled_from([2**31, 2**63, 10**30, -(2**63)]), st.integers()
            ),
            max_size=6,
        )
    )
    parts = [str(i) for i in index]
    if draw(st.integers(0, 4)) == 0 and parts:
        k = draw(st.integers(0, len(parts) - 1))
        parts[k] = draw(st.sampled_from(["", " ", "x", "1.0", "0x1", "٣", "1_0", "+1", "-0", "(1)", "[1]", "1 1", "⁴"]))
    separator = draw(st.sampled_from([",", ", ", " ,", ";", ",,", "]["]))
    space = draw(st.sampled_from(["", " ", "\t", "\n", "  "]))
    opener, closer = draw(st.sampled_from([("[", "]"), ("(", ")"), ("[", ""), ("", "]"), ("[[", "]]")]))
    return space + name + opener + separator.join(parts) + closer + space


@st.composite
def valid_elements(draw, network):
    """A canonical element name of this network, now and then with its index pushed out of range."""
    tensor = draw(st.sampled_from(list(tensors(network).values())))
    if not tensor.shape:
        return tensor.name
    index = [draw(st.integers(0, d - 1)) for d in tensor.shape]
    if draw(st.integers(0, 3)) == 0:
        k = draw(st.integers(0, len(index) - 1))
        index[k] = draw(st.sampled_from([-1, tensor.shape[k], tensor.shape[k] + 1, 2**63, 10**100]))
    return tensor.element(tuple(index))


def strings_for(network):
    return st.one_of(valid_elements(network), param_strings(tuple(tensors(network))), strings)


strings = st.one_of(
    param_strings(),
    st.sampled_from(INJECTIONS),
    st.text(max_size=40),
    st.text(alphabet="conv1.weightfcbias[],0123456789- _\t", max_size=40),
    st.text(max_size=2000 if LONG else 200),  # long inputs; whitespace runs are bug B12's ground
)


def param_case(network, text: str, parse=parse_element, seconds: float | None = None) -> Outcome:
    return run_case(lambda: parse(network, text), **({"seconds": seconds} if seconds else {}))


def check(network, text: str, parse) -> None:
    note(repr(text[:500]))
    outcome = param_case(network, text, parse)
    if outcome.kind == "user_error":
        message = str(outcome.error)
        if "\n" in message or "\r" in message or not outcome.error.field:
            outcome = Outcome("bug", error=AssertionError(f"not a one-line message naming the option: {message!r}"))
    elif outcome.kind == "ok":
        tensor, index = outcome.value
        known = tensors(network)
        try:
            assert known.get(tensor.name) == tensor, f"unknown tensor {tensor.name}"
            if index is not None:
                assert all(type(i) is int for i in index), index
                assert len(index) == len(tensor.shape), (index, tensor.shape)
                assert all(0 <= i < d for i, d in zip(index, tensor.shape)), (index, tensor.shape)
                again = parse(network, tensor.element(index))  # the canonical name reads back as itself
                assert again == (tensor, index), (again, tensor, index)
            if parse is parse_parameter:
                assert tensor.role in ("weight", "bias"), tensor.role
        except AssertionError as problem:
            outcome = Outcome("bug", error=problem)
    judge(outcome, f"--param {text[:200]!r}: not a name or a clean UserError")


@fuzz_settings(default=300, long=3000)
@given(st.sampled_from(sorted(NETWORKS)), st.data())
def test_parse_element(network_name, data):
    network = NETWORKS[network_name]
    check(network, data.draw(strings_for(network), label="text"), parse_element)


@fuzz_settings(default=200, long=2000)
@given(st.sampled_from(sorted(NETWORKS)), st.data())
def test_parse_parameter(network_name, data):
    network = NETWORKS[network_name]
    check(network, data.draw(strings_for(network), label="text"), parse_parameter)


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_looking_strings(text):
    for network in NETWORKS.values():
        check(network, text, parse_parameter)


def test_every_canonical_name_parses():
    for network in NETWORKS.values():
        for tensor in tensors(network).values():
            for index in list(tensor.indices())[:50]:
                assert parse_element(network, tensor.element(index)) == (tensor, index if tensor.shape else None)


# Was bug B12: a pattern with `\s*` on both ends of an optional group backtracked quadratically over
# trailing whitespace (50,000 spaces took 7 s).
@pytest.mark.parametrize(
    "text", ["conv1.weight" + " " * 200_000 + "x", "a" + "\t" * 200_000 + "!"], ids=["spaces", "tabs"]
)
def test_trailing_whitespace_is_refused_quickly(text):
    network = NETWORKS["seed000_tied_maxpool.yaml"]
    outcome = param_case(network, text, seconds=0.5)
    assert outcome.kind == "user_error", outcome.describe()
