"""What each named mistake is called and the paragraph that explains the right rule.

A new named mistake is one entry here and one way to build it in `mistakes.py`.

A paragraph is a list of parts; a part with conditions is said only when the network has what it
is about (`features`: its layer kinds, `loss:mse`, `fused:softmax` ...), so that a network without
pooling never reads about pooling. A condition is a set of features of which one must be present;
a part with several conditions needs each of them.
"""

from __future__ import annotations

POOLS = frozenset({"maxpool2d", "avgpool2d", "adaptive_avg_pool2d"})
AVERAGE_POOLS = frozenset({"avgpool2d", "adaptive_avg_pool2d"})
RECTIFIERS = frozenset({"relu", "leaky_relu"})
# what makes a chain-rule term zero, said only for the kinds the network has
CUTTERS = {"relu": "a ReLU", "maxpool2d": "a max-pool", "dropout": "a dropout mask"}


def _when(*conditions: frozenset | set | str, text: str) -> tuple[tuple[frozenset, ...], str]:
    return tuple(frozenset({c}) if isinstance(c, str) else frozenset(c) for c in conditions), text


EXPLANATIONS = {
    "product_of_sums": (
        "a product of sums instead of a sum of products",
        [
            "The parameter is used at several places",
            _when("conv2d", text=" (a filter weight at every position it slides over)"),
            (
                "; each use is one path to the loss, and the chain rule gives one term per path, "
                "∂L/∂z_k · ∂z_k/∂w = ∂L/∂z_k · x_k, then adds the terms: ∂L/∂w = Σ_k x_k ∂L/∂z_k. Each input "
                "is paired only with the gradient of the output it helped to produce. Multiplying the sum of the "
                "inputs by the sum of the output gradients, (Σ_k x_k)(Σ_k ∂L/∂z_k), also pairs every input with "
                "the gradient of every other output: those cross terms are not in the chain rule."
            ),
        ],
    ),
    "products": (
        "the chain-rule terms multiplied instead of added",
        [
            (
                "When a quantity reaches the loss along several paths, its gradient is the sum of the "
                "contributions of the paths: ∂L/∂p = Σ_k ∂L/∂z_k · ∂z_k/∂p. The chain rule multiplies along one "
                "path (the gradient of the next neuron times the local derivative) and adds across paths; the "
                "product of the contributions of different paths has no meaning."
            )
        ],
    ),
    "next_layer_multiplied": (
        "the gradients from the next layer multiplied instead of added",
        [
            (
                "A neuron that feeds several neurons of the next layer gets the sum of their gradients, each "
                "times the weight that connects it to them: ∂L/∂p_j = Σ_k ∂L/∂z_k · W_kj."
            ),
            _when("conv2d", text=" In a convolution only the positions whose window covers p_j contribute."),
            " The chain rule adds across paths; it never multiplies the gradients of different neurons together.",
        ],
    ),
    "local_left_out": (
        "the local derivatives left out",
        [
            (
                "Each chain-rule term is the gradient of the next quantity times the local derivative, "
                "∂L/∂z_k · ∂z_k/∂p. Adding only the gradients ∂L/∂z_k leaves out the weights (or inputs) that "
                "say how much z_k depends on p"
            ),
            _when(
                POOLS,
                "linear",
                text="; that is why, for example, two pooling neurons that feed the same fully connected layer "
                "get different gradients: their weights differ",
            ),
            ".",
        ],
    ),
    "dropped_term": (
        "one chain-rule term left out",
        [
            (
                "Every output that the quantity influences contributes one term to the sum, and the sum needs "
                "all of them."
            ),
            _when(set(CUTTERS), text=" Only the terms that {cutters} cuts are zero (they are listed as cut)."),
        ],
    ),
    "only_term": (
        "only one chain-rule term kept",
        [
            (
                "The quantity influences several outputs, and each of them contributes a term: the chain rule "
                "adds all of them, not only the one at the first (or the most obvious) position."
            )
        ],
    ),
    "activation_left_out": (
        "the {kind} derivative left out",
        [
            "Between a layer's pre-activation z and its output a = f(z) the chain rule multiplies by f'(z).",
            _when("at:relu", text=" For ReLU: 1 where z > 0 and 0 elsewhere (a switched-off unit passes no gradient)."),
            _when("at:leaky_relu", text=" For leaky ReLU: 1 where z > 0 and its slope elsewhere."),
            _when("at:sigmoid", text=" For sigmoid: σ(z)(1 − σ(z)) = a(1 − a)."),
            _when("at:tanh", text=" For tanh: 1 − a²."),
            _when("at:softmax", text=" For softmax: ∂p_i/∂z_j = p_i(δ_ij − p_j)."),
            " Leaving it out treats the activation as if it were the identity.",
            _when("fused:sigmoid", text=" With binary cross-entropy on a sigmoid the two steps give ∂L/∂z = ŷ − y."),
            _when("fused:softmax", text=" With cross-entropy on a softmax the two steps give ∂L/∂z = p − y."),
        ],
    ),
    "maxpool_all": (
        "the max-pool gradient sent to every element of the window",
        [
            (
                "Max-pooling passes on only the largest element of each window, so only that element "
                "influences the loss: it gets the whole gradient of the window's output and the other elements "
                "get 0 (a tie goes to the first maximum in row-major order, as in PyTorch). Sending the gradient "
                "to every element treats the max as if it were a sum."
            )
        ],
    ),
    "softmax_diagonal": (
        "the softmax cross terms dropped",
        [
            (
                "Every softmax output depends on every input, because they share the denominator: "
                "∂p_i/∂z_j = p_i(δ_ij − p_j). Using only the diagonal p_i(1 − p_i) leaves out the terms "
                "−p_i p_j for j ≠ i."
            ),
            _when("fused:softmax", text=" With cross-entropy the whole sum collapses to ∂L/∂z_i = p_i − y_i."),
        ],
    ),
    "factor_two": (
        "the factor 2 of the squared error dropped",
        [
            (
                "d/do (o − y)² = 2(o − y): the 2 from the power rule stays in every gradient, unless the loss "
                "is defined with a ½ in front (reduction: half_sum), which cancels it."
            )
        ],
    ),
    "mean": (
        "the 1/n of the mean squared error dropped",
        ["With reduction: mean the loss is (1/n) Σ_i (o_i − y_i)², so every gradient carries the factor 1/n."],
    ),
    "sign": (
        "a sign error",
        [
            "The result is exactly minus the right one.",
            _when("loss:mse", text=" A usual source is the difference in the loss: ∂/∂o (o − y)² = +2(o − y)."),
            _when("fused:softmax", text=" Through a softmax with cross-entropy ∂L/∂z = p − y, not y − p."),
            _when("fused:sigmoid", text=" Through a sigmoid with binary cross-entropy ∂L/∂z = ŷ − y, not y − ŷ."),
        ],
    ),
    "flatten_transposed": (
        "the flatten order transposed",
        [
            (
                "Flatten reads its input row by row, one channel after the other, as PyTorch does: "
                "f[(c·H + i)·W + j] = x[c, i, j]. Reading it column by column (or with the channels last) "
                "sends the gradient of each f_k back to the wrong element of the feature map."
            )
        ],
    ),
    "decay_left_out": (
        "λw left out (∂L/∂w without the weight decay)",
        [
            (
                "With weight decay the loss minimised is J = L + λ/2·Σw², so the gradient has two parts: "
                "∂J/∂w = ∂L/∂w + λ·w, the chain rule's sum and the derivative of the penalty. Yours is the chain "
                "rule's sum alone; add λ·w (PyTorch's SGD(weight_decay=λ) adds the same λ·w)."
            )
        ],
    ),
    "decay_twice": (
        "2λ·w instead of λ·w (the penalty's ½ left out)",
        [
            (
                "The penalty is λ/2·Σw²: the ½ is there so that its derivative is λ·w, and ∂J/∂w = ∂L/∂w + λ·w. "
                "Differentiating λ·Σw² instead adds 2λ·w."
            )
        ],
    ),
    "decay_half": (
        "λ/2·w instead of λ·w",
        [
            (
                "d/dw (λ/2·w²) = λ·w: the 2 of the power rule cancels the ½ of the penalty, so "
                "∂J/∂w = ∂L/∂w + λ·w, not ∂L/∂w + λ/2·w."
            )
        ],
    ),
    "pool_overwritten": (  # built only at a pooling layer: its paragraph is said only there
        "overlapping pooling windows overwritten instead of accumulated",
        [
            _when(
                {"at:maxpool2d", "at:avgpool2d"},
                text="The pooling windows overlap here (the stride is smaller than the kernel), so an input can sit "
                "in several windows, and its gradient is the sum of what each of them sends back",
            ),
            _when("at:maxpool2d", text=": an input that is the maximum of two windows gets both windows' gradients"),
            _when("at:avgpool2d", text=": an input gets 1/(kh·kw) of the gradient of every window it is in"),
            _when(
                POOLS,
                text=". Writing each window's gradient into ∂L/∂x (=) instead of adding it (+=) keeps only the last "
                "window's.",
            ),
        ],
    ),
    "avgpool_share_left_out": (  # built only at an average pool
        "the 1/{size} of the average pool left out",
        [
            _when(
                AVERAGE_POOLS,
                text="An average pool multiplies every element of its window by 1/(kh·kw) (the number of elements it "
                "averages), so each element gets that share of the window's gradient: ∂L/∂x = ∂L/∂p / (kh·kw). "
                "Copying the gradient unchanged to every element treats the pool as a sum.",
            )
        ],
    ),
    "dropout_scale_left_out": (  # built only at a dropout layer
        "dropout's 1/(1 - p) left out",
        [
            (
                "In training mode dropout keeps an element with its mask m = 1 and scales it by 1/(1 - p), so "
                "that its expected value is unchanged: a = z·m/(1 - p). Its local derivative is that same factor, "
                "so ∂L/∂z = ∂L/∂a · m/(1 - p); multiplying by the mask alone forgets the scaling."
            )
        ],
    ),
    "kernel_not_rotated": (
        "the kernel not rotated for ∂L/∂x",
        [
            (
                "The convolution is a correlation, z[i,j] = Σ w[a,b]·x[i·s + a, j·s + b] (as PyTorch's Conv2d), "
                "so x[r,c] meets the weight w[r − i·s, c − j·s] in output z[i,j] and "
                "∂L/∂x[r,c] = Σ ∂L/∂z[i,j]·w[r − i·s, c − j·s]. Written as a sliding window over the zero-padded "
                "delta this is a full correlation with the kernel rotated by 180° (a full convolution with the "
                "kernel). Sliding the kernel as it is pairs each delta with the weight at the mirrored position."
            )
        ],
    ),
    "stride_not_dilated": (
        "the stride left out of ∂L/∂x (the delta not dilated)",
        [
            (
                "With stride s, output z[i,j] reads the window that starts at x[i·s, j·s], so ∂L/∂z[i,j] goes back "
                "to that window: ∂L/∂x[r,c] = Σ ∂L/∂z[i,j]·w[r − i·s, c − j·s]. As a full convolution this needs "
                "the delta dilated, s − 1 zeros between neighbouring elements, before the rotated kernel slides "
                "over it. Without them each ∂L/∂z[i,j] is sent to the window at (i, j) instead of (i·s, j·s), as "
                "if the stride were 1."
            )
        ],
    ),
    "kernel_rotated": (
        "the kernel's gradient rotated (a convolution instead of a correlation)",
        [
            (
                "The weight w[a,b] multiplies x[i·s + a, j·s + b] in output z[i,j], so "
                "∂L/∂w[a,b] = Σ ∂L/∂z[i,j]·x[i·s + a, j·s + b]: the input correlated with the delta, nothing "
                "rotated (the 180° rotation belongs to ∂L/∂x only). Flipping the delta (convolving the input with "
                "it) or rotating the result pairs each input with the gradient of an output it did not feed."
            )
        ],
    ),
    "momentum_on_gradient": (
        "momentum applied to the gradient instead of the velocity",
        [
            (
                "SGD with momentum (PyTorch's, dampening 0) first updates the velocity, v ← μ·v + g, then steps "
                "along it, w ← w − lr·v. The momentum μ multiplies the old velocity, not the gradient: v + μ·g "
                "keeps all of the old velocity and only μ of the new gradient."
            )
        ],
    ),
    "step_decay_left_out": (
        "λw left out of the step",
        [
            (
                "With weight decay the step uses the gradient of J = L + λ/2·Σw²: g = ∂L/∂w + λ·w (PyTorch's "
                "SGD(weight_decay=λ) adds the same λ·w), which pulls every decayed weight towards 0 by lr·λ·w on "
                "top of the loss's gradient. Yours stepped with ∂L/∂w alone."
            )
        ],
    ),
    "residual_averaged": (
        "a residual gradient averaged instead of summed",
        [
            (
                "A tensor read by several layers (the input of a residual block: its branch and the identity "
                "skip) reaches the loss along every branch, and the chain rule adds one term per path: "
                "∂L/∂x = Σ_branches ∂L/∂x|branch. At an add, the + copies the gradient to both branches "
                "(∂(a + b)/∂a = 1), so each branch gets the whole gradient; dividing by the number of branches "
                "would be right only if the forward pass had averaged them."
            )
        ],
    ),
    "kink_convention": (
        "the other convention at a kink ({what})",
        [
            (
                "Not a chain-rule mistake: at this config's numbers a value sits exactly on a kink, where "
                "calculus leaves a choice (any subgradient is valid). PyTorch, and so cnnderive,"
            ),
            _when("relu", text=" take ReLU'(0) = 0"),
            _when("leaky_relu", text=" take leaky ReLU'(0) = its slope"),
            _when(RECTIFIERS, "maxpool2d", text=" and"),
            _when("maxpool2d", text=" send a max-pool window's gradient to its first maximum in row-major order"),
            (
                "; your value follows another valid choice. Under PyTorch's convention the gradient is the one "
                "given above."
            ),
        ],
    ),
}


def network_features(network) -> frozenset[str]:
    """What a paragraph may mention: the layer kinds, the loss (`loss:mse`), a loss taken through the
    final softmax or sigmoid in one step (`fused:softmax`)."""
    features = {layer.kind for layer in network.layers} | {f"loss:{network.loss.kind}"}
    if network.fused_loss():
        features.add(f"fused:{network.layers[-1].kind}")
    return frozenset(features)


def explanation(key: str, features: frozenset[str]) -> str:
    """The paragraph of a mistake, with only the parts about what this network has."""
    said = []
    for part in EXPLANATIONS[key][1]:
        if isinstance(part, str):
            said.append(part)
        elif all(condition & features for condition in part[0]):
            said.append(part[1])
    cutters = [words for kind, words in CUTTERS.items() if kind in features]
    text = "".join(said)
    if "{cutters}" in text:
        text = text.replace("{cutters}", ", ".join(cutters[:-1]) + (" or " if len(cutters) > 1 else "") + cutters[-1])
    return text
