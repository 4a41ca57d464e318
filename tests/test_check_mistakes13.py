"""Issue 13 item 8: the named mistakes of weight decay, of the SGD step, of overlapping pooling
windows, of the average pool's 1/k², and of the convolution's backward pass (the kernel rotation,
the stride's dilation).

Each mistaken value is worked by hand here, in Fractions, from the definition of the mistake
(the sums written out over the small network's elements), never taken from the program; each
differs from the right one, `check --value <mistaken>` exits 1 and names it, and the right value
exits 0.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction as F

import pytest

from cnnderive.check.checker import Checker
from cnnderive.config import loads
from cnnderive.derivation.build import Derivation
from tests.cli_support import run_cli

# -- the networks ------------------------------------------------------------------------------------

# z = w₁₁·1 + w₁₂·2 + b = 1/2 - 1/2 + 1/10 = 1/10; L = (z - 1)², ∂L/∂z = 2(z - 1) = -9/5
DECAY = """
input: {values: [1, 2]}
layers:
  - {type: linear, name: fc, out_features: 1, params: {weight: [[0.5, -0.25]], bias: [0.1]}}
loss: {type: mse, target: [1], reduction: sum, weight_decay: 0.1}
"""
STEP = DECAY + "train: {lr: 0.5, momentum: 0.9, velocity: {fc.weight: [[0.2, 0.4]]}}\n"
# a conv with a 2x2 kernel, flatten, one output o = Σ v_k z_k; L = o², so ∂L/∂z[i,j] = 2o·v[i·W' + j]
CONV = """
input: {{values: {x}}}
layers:
  - {{type: conv2d, name: conv1, out_channels: 1, kernel_size: 2, stride: {s}, bias: false,
     params: {{weight: [[{w}]]}}}}
  - {{type: flatten}}
  - {{type: linear, name: fc, out_features: 1, bias: false, params: {{weight: [{v}]}}}}
loss: {{type: mse, target: [0], reduction: sum}}
"""
X4 = [[1, 2, 0, 1], [0, 1, 3, 2], [2, 1, 1, 0], [1, 0, 2, 1]]
W = [[1, 2], [3, -1]]
CONV_1 = CONV.format(x=X4, s=1, w=W, v=[1, -1, 2, 0, 1, 3, -2, 1, 1])
CONV_2 = CONV.format(x=X4, s=2, w=W, v=[1, -2, 3, 1])
# a 1x1 conv halves x, a 2x2 pool, flatten, o = Σ v_k p_k, L = o²
POOL = """
input: {{values: {x}}}
layers:
  - {{type: conv2d, name: conv1, out_channels: 1, kernel_size: 1, bias: false, params: {{weight: [[[[0.5]]]]}}}}
  - {{type: {kind}, kernel_size: 2, stride: {s}}}
  - {{type: flatten}}
  - {{type: linear, name: fc, out_features: 1, bias: false, params: {{weight: [{v}]}}}}
loss: {{type: mse, target: [0], reduction: sum}}
"""
X3 = [[1, 2, 3], [4, 9, 5], [6, 7, 8]]  # 9 is the maximum of all four 2x2 windows
V = [1, -1, 2, 3]


def checker(text: str, param: str) -> Checker:
    return Checker(Derivation(loads(text, "net.yaml")), param)


def named(text: str, param: str, value: F, *flags: str) -> tuple[int, str]:
    """`cnnderive check` on the config text: its exit status and its output on one line."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "net.yaml")
        with open(path, "w") as file:
            file.write(text)
        status, out, err = run_cli(["check", path, "--param", param, "--value", str(value), *flags])
    return status, " ".join((out + err).split())


def assert_named(text: str, param: str, right: F, wrong: F, key: str, title: str, *flags: str) -> None:
    """The right value exits 0; the mistaken one (different) exits 1, its mistake named first."""
    assert wrong != right
    status, out = named(text, param, right, *flags)
    assert status == 0, out
    status, out = named(text, param, wrong, *flags)
    assert status == 1, out
    assert f"what you get with {title}" in out, out
    if not flags:
        assert checker(text, param).check_value(str(wrong)).mistakes[0].key == key


# -- hand computation helpers: plain lists of Fractions ------------------------------------------------


def at(m: list, r: int, c: int) -> F:
    """m[r][c], 0 outside."""
    return F(m[r][c]) if 0 <= r < len(m) and 0 <= c < len(m[0]) else F(0)


def conv_forward(x, w, s: int) -> list:
    size = (len(x) - len(w)) // s + 1
    return [
        [sum(F(w[a][b]) * x[i * s + a][j * s + b] for a in range(2) for b in range(2)) for j in range(size)]
        for i in range(size)
    ]


def conv_deltas(x, w, s: int, v) -> list:
    """∂L/∂z = 2o·v, as the conv's output grid."""
    z = conv_forward(x, w, s)
    size = len(z)
    o = sum(F(v[i * size + j]) * z[i][j] for i in range(size) for j in range(size))
    return [[2 * o * v[i * size + j] for j in range(size)] for i in range(size)]


# -- weight decay ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wrong", "key", "title"),
    [
        # ∂L/∂w₁₁ = -9/5 · x₁ = -9/5, λ·w₁₁ = 1/10 · 1/2 = 1/20, right ∂J/∂w₁₁ = -9/5 + 1/20 = -7/4
        (F(-9, 5), "decay_left_out", "λw left out"),
        (F(-9, 5) + 2 * F(1, 20), "decay_twice", "2λ·w instead of λ·w"),
        (F(-9, 5) + F(1, 40), "decay_half", "λ/2·w instead of λ·w"),
    ],
)
def test_weight_decay_mistakes(wrong, key, title):
    assert_named(DECAY, "fc.weight[0,0]", F(-7, 4), wrong, key, title)
    _, out = named(DECAY, "fc.weight[0,0]", wrong)
    assert "∂J/∂w¹₁₁ = ∂L/∂w¹₁₁ + λ·w¹₁₁ = -1.8 + 0.1·0.5 = -1.75" in out  # the λ·w beside the chain rule's terms


def test_weight_decay_left_out_in_a_formula():
    """2(z - y)·x₁ is ∂L/∂w₁₁; the gradient adds λ·w₁₁ = w₁₁/10."""
    c = checker(DECAY, "fc.weight[0,0]")
    assert c.check_expr("2*(z1 - y1)*x1 + w1_1/10").right
    verdict = c.check_expr("2*(z1 - y1)*x1")
    assert [m.key for m in verdict.mistakes] == ["decay_left_out"]
    assert "J = L + λ/2·Σw²" in verdict.mistakes[0].explanation


# -- the SGD step ------------------------------------------------------------------------------------


def test_updated_weight_and_its_mistakes():
    """g = ∂J/∂w₁₁ = -7/4, v = 1/5, μ = 9/10, lr = 1/2: v' = 9/10·1/5 - 7/4 = -157/100 and
    w' = 1/2 + 1/2·157/100 = 257/200. Momentum on the gradient: v + μ·g = 1/5 - 63/40 = -11/8,
    w' = 1/2 + 11/16 = 19/16. λw left out of the step: g = -9/5, v' = 9/50 - 9/5 = -81/50,
    w' = 1/2 + 81/100 = 131/100."""
    right = F(1, 2) - F(1, 2) * (F(9, 10) * F(1, 5) + F(-7, 4))
    assert right == F(257, 200)
    momentum = F(1, 2) - F(1, 2) * (F(1, 5) + F(9, 10) * F(-7, 4))
    decay = F(1, 2) - F(1, 2) * (F(9, 10) * F(1, 5) + F(-9, 5))
    param = "fc.weight[0,0]"
    title = "momentum applied to the gradient instead of the velocity"
    assert_named(STEP, param, right, momentum, "momentum_on_gradient", title, "--updated")
    assert_named(STEP, param, right, decay, "step_decay_left_out", "λw left out of the step", "--updated")
    status, out = named(STEP, param, F(1, 7), "--updated")
    assert status == 1 and "No common mistake of the step" in out
    assert "v ← μ·v + ∂J/∂w¹₁₁ = 0.9·0.2 + (-1.75) = -1.57" in out


def test_updated_refuses_what_it_cannot_check():
    status, out = named(DECAY, "fc.weight[0,0]", F(1), "--updated")  # no train:
    assert status == 2 and "train:" in out
    status, out = named(STEP, "fc.output[0]", F(1), "--updated")
    assert status == 2 and "not a parameter" in out
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "net.yaml")
        with open(path, "w") as file:
            file.write(STEP)
        status, _, err = run_cli(["check", path, "--param", "fc.weight[0,0]", "--expr", "w1_1", "--updated"])
    assert status == 2 and "give it with --value" in err


# -- pooling ---------------------------------------------------------------------------------------


def pool_weight_gradient(kind: str, stride: int, x, v, overwrite: bool = False, share: bool = True) -> F:
    """∂L/∂w of the 1x1 conv (z = w·x, w = 1/2) through a 2x2 pool: Σ ∂L/∂z[r,c]·x[r,c], where each
    window sends ∂L/∂p back to its maximum (max) or 1/4 of it to each element (avg); `overwrite`
    writes each window's share instead of adding it (windows in row-major order), `share=False`
    leaves the 1/4 out."""
    z = [[F(1, 2) * value for value in row] for row in x]
    size = (len(x) - 2) // stride + 1
    windows = [
        [(i * stride + a, j * stride + b) for a in range(2) for b in range(2)] for i in range(size) for j in range(size)
    ]
    pooled = [
        max(z[r][c] for r, c in win) if kind == "maxpool2d" else sum(z[r][c] for r, c in win) / 4 for win in windows
    ]
    o = sum(F(vk) * p for vk, p in zip(v, pooled))
    delta_z = [[F(0)] * len(x) for _ in x]
    for win, vk, p in zip(windows, v, pooled):
        delta_p = 2 * o * vk
        if kind == "maxpool2d":
            targets, part = [next((r, c) for r, c in win if z[r][c] == p)], delta_p
        else:
            targets, part = win, delta_p / 4 if share else delta_p
        for r, c in targets:
            delta_z[r][c] = part if overwrite else delta_z[r][c] + part
    return sum(delta_z[r][c] * x[r][c] for r in range(len(x)) for c in range(len(x)))


def test_maxpool_overlapping_windows_overwritten():
    """All four windows pick z₂₂ = 9/2: o = (1 - 1 + 2 + 3)·9/2 = 45/2, ∂L/∂p = 45·v, so ∂L/∂z₂₂ =
    45·5 = 225 and ∂L/∂w = 225·9 = 2025; keeping only the last window's 45·3 gives 1215."""
    right = pool_weight_gradient("maxpool2d", 1, X3, V)
    wrong = pool_weight_gradient("maxpool2d", 1, X3, V, overwrite=True)
    assert (right, wrong) == (2025, 1215)
    text = POOL.format(x=X3, kind="maxpool2d", s=1, v=V)
    assert_named(text, "conv1.weight[0,0,0,0]", right, wrong, "pool_overwritten", "overlapping pooling windows")
    _, out = named(text, "conv1.weight[0,0,0,0]", wrong)
    assert "The pooling windows overlap here" in out and "keeps only the last window's" in out
    assert "maximum of two windows" in out and "1/(kh·kw)" not in out


def test_avgpool_overlapping_windows_overwritten():
    text = POOL.format(x=X3, kind="avgpool2d", s=1, v=V)
    right = pool_weight_gradient("avgpool2d", 1, X3, V)
    wrong = pool_weight_gradient("avgpool2d", 1, X3, V, overwrite=True)
    assert_named(text, "conv1.weight[0,0,0,0]", right, wrong, "pool_overwritten", "overlapping pooling windows")
    _, out = named(text, "conv1.weight[0,0,0,0]", wrong)
    assert "The pooling windows overlap here" in out and "keeps only the last window's" in out
    assert "1/(kh·kw) of the gradient of every window" in out and "maximum of two" not in out


def test_avgpool_share_left_out():
    x = [[1, 2, 3, 0], [4, 9, 5, 1], [6, 7, 8, 2], [1, 1, 2, 3]]
    text = POOL.format(x=x, kind="avgpool2d", s=2, v=V)
    right = pool_weight_gradient("avgpool2d", 2, x, V)
    wrong = pool_weight_gradient("avgpool2d", 2, x, V, share=False)
    assert_named(text, "conv1.weight[0,0,0,0]", right, wrong, "avgpool_share_left_out", "the 1/4 of the average pool")


def test_global_average_pool_share_left_out():
    """One 2x2 window: p = (1 + 2 + 3 + 4)/8 = 5/4 (z = x/2), o = 3p = 15/4, ∂L/∂p = 45/2,
    ∂L/∂z = 45/8 each and ∂L/∂w = 45/8·10 = 225/4; without the 1/4: 225."""
    text = """
input: {values: [[1, 2], [3, 4]]}
layers:
  - {type: conv2d, name: conv1, out_channels: 1, kernel_size: 1, bias: false, params: {weight: [[[[0.5]]]]}}
  - {type: adaptive_avg_pool2d}
  - {type: flatten}
  - {type: linear, name: fc, out_features: 1, bias: false, params: {weight: [[3]]}}
loss: {type: mse, target: [0], reduction: sum}
"""
    right = F(45, 8) * 10
    assert_named(text, "conv1.weight[0,0,0,0]", right, 4 * right, "avgpool_share_left_out", "the 1/4 of the average")


# -- convolution ------------------------------------------------------------------------------------


def input_gradient(x, w, s: int, v, r: int, c: int, rotate: bool = True, dilate: bool = True) -> F:
    """∂L/∂x[r,c] as the full correlation of the delta (dilated by s, padded by 1) with the kernel
    rotated by 180°, which is Σ ∂L/∂z[i,j]·w[r - i·s][c - j·s]; `rotate=False` slides the kernel
    unrotated: Σ w[a][b]·D[r + a - 1][c + b - 1] with D the dilated delta; `dilate=False` uses the
    delta undilated, as if s were 1: Σ ∂L/∂z[i,j]·w[r - i][c - j]."""
    delta = conv_deltas(x, w, s, v)
    step = s if dilate else 1
    dilated = [[F(0)] * (step * (len(delta) - 1) + 1) for _ in range(step * (len(delta) - 1) + 1)]
    for i, row in enumerate(delta):
        for j, value in enumerate(row):
            dilated[i * step][j * step] = value
    if rotate:
        return sum(at(w, r - p, c - q) * dilated[p][q] for p in range(len(dilated)) for q in range(len(dilated)))
    return sum(F(w[a][b]) * at(dilated, r + a - 1, c + b - 1) for a in range(2) for b in range(2))


def weight_gradient(x, w, s: int, v, a: int, b: int, flip_delta: bool = False) -> F:
    """∂L/∂w[a,b] = Σ ∂L/∂z[i,j]·x[i·s + a][j·s + b] (the delta flipped by 180° with `flip_delta`)."""
    delta = conv_deltas(x, w, s, v)
    n = len(delta)
    pick = (lambda i, j: delta[n - 1 - i][n - 1 - j]) if flip_delta else (lambda i, j: delta[i][j])
    return sum(pick(i, j) * x[i * s + a][j * s + b] for i in range(n) for j in range(n))


def test_conv_kernel_not_rotated_for_the_input_gradient():
    v = [1, -1, 2, 0, 1, 3, -2, 1, 1]
    right = input_gradient(X4, W, 1, v, 2, 1)
    wrong = input_gradient(X4, W, 1, v, 2, 1, rotate=False)
    assert_named(CONV_1, "input[0,2,1]", right, wrong, "kernel_not_rotated", "the kernel not rotated for ∂L/∂x")
    right = input_gradient(X4, W, 2, [1, -2, 3, 1], 1, 0)  # with stride 2 too
    wrong = input_gradient(X4, W, 2, [1, -2, 3, 1], 1, 0, rotate=False)
    assert_named(CONV_2, "input[0,1,0]", right, wrong, "kernel_not_rotated", "the kernel not rotated")


def test_conv_kernel_not_rotated_as_a_formula():
    """∂L/∂x₁₁ = ∂L/∂z₁₁·w₁₁ (the only window over x₁₁); the unrotated kernel pairs it with w₂₂."""
    c = checker(CONV_1, "input[0,0,0]")
    assert c.check_expr("dL/dz1_1_1 * w1_1_1").right
    assert [m.key for m in c.check_expr("dL/dz1_1_1 * w1_2_2").mistakes][:1] == ["kernel_not_rotated"]


def test_conv_stride_without_dilating_the_delta():
    v = [1, -2, 3, 1]
    right = input_gradient(X4, W, 2, v, 2, 0)
    wrong = input_gradient(X4, W, 2, v, 2, 0, dilate=False)
    assert_named(CONV_2, "input[0,2,0]", right, wrong, "stride_not_dilated", "the stride left out of ∂L/∂x")


def test_conv_kernel_rotated_for_the_weight_gradient():
    """Two ways of rotating: the delta flipped (x convolved with it), or the whole ∂L/∂W rotated
    by 180°, which puts at w₂₂ the right gradient of w₁₁."""
    v = [1, -1, 2, 0, 1, 3, -2, 1, 1]
    right = weight_gradient(X4, W, 1, v, 0, 0)
    flipped = weight_gradient(X4, W, 1, v, 0, 0, flip_delta=True)
    title = "the kernel's gradient rotated"
    assert_named(CONV_1, "conv1.weight[0,0,0,0]", right, flipped, "kernel_rotated", title)
    right = weight_gradient(X4, W, 1, v, 1, 1)
    rotated = weight_gradient(X4, W, 1, v, 0, 0)
    assert_named(CONV_1, "conv1.weight[0,0,1,1]", right, rotated, "kernel_rotated", title)


def test_the_paragraphs_speak_only_of_this_network():
    """A network without pooling, decay or a step never reads about them in a conv mistake."""
    _, out = named(CONV_1, "input[0,2,1]", input_gradient(X4, W, 1, [1, -1, 2, 0, 1, 3, -2, 1, 1], 2, 1, rotate=False))
    for absent in ("pool", "λ", "momentum"):
        assert absent not in out


DROPOUT = """
name: linear, dropout p = 1/4, linear, squared error
input: {values: [1, 2]}
layers:
  - {type: linear, name: fc1, out_features: 2, params: {weight: [[1, 0], [0, 1]], bias: [0, 0]}}
  - {type: dropout, p: 0.25, mask: [1, 0]}
  - {type: linear, name: fc2, out_features: 1, bias: false, params: {weight: [[1, 1]]}}
loss: {type: mse, target: [0], reduction: sum}
"""


def test_dropout_scale_left_out(tmp_path):
    """By hand: z = (1, 2), a = z·m/(1 - p) = (4/3, 0), o = 4/3, dL/do = 8/3, dL/dz₁ = 8/3 · 4/3 = 32/9,
    dL/dW1[0,0] = 32/9 · x₁ = 32/9; with the mask alone (no 4/3): 8/3."""
    path = tmp_path / "net.yaml"
    path.write_text(DROPOUT)
    right, mistaken = F(32, 9), F(8, 3)
    code, out, err = run_cli(["check", str(path), "--param", "fc1.weight[0,0]", "--value", str(right)])
    assert code == 0, out + err
    code, out, err = run_cli(["check", str(path), "--param", "fc1.weight[0,0]", "--value", str(mistaken)])
    assert code == 1 and "dropout's 1/(1 - p) left out" in out, out + err
