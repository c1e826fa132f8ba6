"""StyleGAN2 ops against the official StyleGAN2-ADA reference paths (fixture: tests/data/stylegan2_ops.npz)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_close, hwio, load_fixture, nhwc

from clr_gan_jax.errors import UserError
from clr_gan_jax.models.stylegan2 import ops

REF = load_fixture("stylegan2_ops.npz")


def cases(prefix):
    return sorted({k.split("/")[1] for k in REF if k.startswith(prefix + "/") and k.count("/") >= 2})


def traced(implementation, fn, *args):
    """fn(*args), jitted as one program and traced under ``implementation``."""
    with ops.implementation(implementation):
        return jax.jit(fn)(*args)


@pytest.mark.parametrize("case", cases("setup_filter"))
def test_setup_filter(case):
    f = REF[f"setup_filter/{case}/f"]
    kwargs = {
        "default": {},
        "taps8": {},
        "taps6_separable": {"separable": True},
        "taps8_flip_gain": {"flip_filter": True, "gain": 3},
        "taps8_not_separable": {"separable": False},
        "taps12_unnormalized": {"normalize": False},
        "rect_flip_gain": {"flip_filter": True, "gain": 2},
        "scalar": {},
    }[case]
    out = ops.setup_filter(f, **kwargs)
    assert out.dtype == np.float32
    assert_close(out, REF[f"setup_filter/{case}/out"], 1e-7)


def test_setup_filter_rejects_3d():
    with pytest.raises(UserError, match="resample filter"):
        ops.setup_filter(np.ones((2, 2, 2)))


def upfirdn2d_case(x, args):
    fi, up, down, px0, px1, py0, py1, flip, gain = args
    f = REF[["upfirdn2d/filter_box4", "upfirdn2d/filter_taps6", "upfirdn2d/filter_rect"][int(fi)]]
    padding = (int(px0), int(px1), int(py0), int(py1))
    return ops.upfirdn2d(x, f, up=int(up), down=int(down), padding=padding, flip_filter=bool(flip), gain=float(gain))


def test_upfirdn2d_grid():
    """up x down x padding (zero, asymmetric, negative) x flip/gain x filter (2-D 4x4, 1-D separable, 2-D 3x2)."""
    x = nhwc(REF["upfirdn2d/x"])
    names = REF["upfirdn2d/names"]
    assert len(names) == 72
    with ops.implementation("conv"):
        for name, args in zip(names, REF["upfirdn2d/args"]):
            assert_close(upfirdn2d_case(x, args), nhwc(REF[f"upfirdn2d/y/{name}"]))


def test_upfirdn2d_grid_matmul_implementation():
    """The shifted-slice FIR on each filter kind, up, down and non-trivial padding, as one program."""
    x = nhwc(REF["upfirdn2d/x"])
    chosen = [(n, a) for n, a in zip(REF["upfirdn2d/names"], REF["upfirdn2d/args"]) if "_p0_" not in n and "flip1" in n]
    assert len(chosen) == 24
    outputs = traced("matmul", lambda x: [upfirdn2d_case(x, args) for _, args in chosen], x)
    for (name, _), y in zip(chosen, outputs):
        assert_close(y, nhwc(REF[f"upfirdn2d/y/{name}"]))


@pytest.mark.parametrize("implementation", ops.IMPLEMENTATIONS)
@pytest.mark.parametrize("filter_name", ["box4", "taps6"])
def test_resampling_wrappers(implementation, filter_name):
    f = REF[f"upfirdn2d/filter_{filter_name}"]
    ref = {k.split("/")[2]: nhwc(v) for k, v in REF.items() if k.startswith(f"wrappers/{filter_name}/")}

    def wrappers(x):
        return {
            "upsample2d": ops.upsample2d(x, f),
            "downsample2d": ops.downsample2d(x, f),
            "filter2d": ops.filter2d(x, f),
            "upsample2d_pad": ops.upsample2d(x, f, padding=(1, 0, -1, 2)),
            "downsample2d_pad_flip": ops.downsample2d(x, f, padding=-1, flip_filter=True),
        }

    outputs = traced(implementation, wrappers, nhwc(REF["upfirdn2d/x"]))
    assert sorted(outputs) == sorted(ref)
    for name, y in outputs.items():
        assert_close(y, ref[name])


def conv2d_resample_case(x, args, weights=None):
    """The fixture's conv2d_resample call ``args`` on x, with the fixture's HWIO weights or the given ones."""
    if weights is None:
        weights = [hwio(REF[f"conv2d_resample/{name}"]) for name in ("w3", "w1", "wg")]
    filters = [REF["conv2d_resample/box4"], REF["conv2d_resample/asym"]]
    wi, fi, up, down, px0, px1, py0, py1, groups, flip_weight, flip_filter = (int(a) for a in args)
    return ops.conv2d_resample(
        x,
        weights[wi],
        filters[fi],
        up=up,
        down=down,
        padding=(px0, px1, py0, py1),
        groups=groups,
        flip_weight=bool(flip_weight),
        flip_filter=bool(flip_filter),
    )


@pytest.mark.parametrize("implementation", ops.IMPLEMENTATIONS)
def test_conv2d_resample_every_path(implementation):
    names = list(REF["conv2d_resample/names"])
    assert {"up_flip", "down", "up_1x1", "down_1x1", "grouped_up", "fallback_asym_pad", "up_down"} <= set(names)
    args = REF["conv2d_resample/args"]
    outputs = traced(
        implementation, lambda x: [conv2d_resample_case(x, a) for a in args], nhwc(REF["conv2d_resample/x"])
    )
    for name, y in zip(names, outputs):
        assert_close(y, nhwc(REF[f"conv2d_resample/y/{name}"]))


def test_implementations_have_equal_gradients():
    """d/dx and d/dw through im2col (plain, strided, grouped), the overlap-add transposed convolution (grouped and
    not) and the shifted-slice FIR (rank-one, 1-D, 2-D filters; up and down): "matmul" == "conv"."""
    x_conv, x_fir = nhwc(REF["conv2d_resample/x"]), nhwc(REF["upfirdn2d/x"])
    weights = [hwio(REF[f"conv2d_resample/{name}"]) for name in ("w3", "w1", "wg")]
    paths = ["up_flip", "down_asym_filter", "grouped_plain", "grouped_up"]
    conv_args = [a for n, a in zip(REF["conv2d_resample/names"], REF["conv2d_resample/args"]) if n in paths]
    fir_cases = ["box4_up2_down1_pasym_flip1_gain3", "taps6_up1_down2_pasym_flip1_gain3"]
    fir_args = [a for n, a in zip(REF["upfirdn2d/names"], REF["upfirdn2d/args"]) if n in fir_cases]

    def loss(x_conv, x_fir, weights):
        outputs = [conv2d_resample_case(x_conv, a, weights) for a in conv_args]
        outputs += [upfirdn2d_case(x_fir, a) for a in fir_args]
        probes = np.random.default_rng(0)
        return sum(jnp.sum(y * probes.standard_normal(y.shape).astype(np.float32)) for y in outputs)

    grads = [traced(i, jax.grad(loss, argnums=(0, 1, 2)), x_conv, x_fir, weights) for i in ops.IMPLEMENTATIONS]
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1])):
        assert_close(a, b)


def test_same_padded_convolution_derivatives_match_xla():
    """The "matmul" stride-1 convolution (XLA's forward, the kernel gradient as one product per tap) == "conv":
    values, d/dx, d/dw and the second derivatives of |d/dx|^2 (the R1 and path-length pattern), pads 0, 1, 2."""
    x, w = nhwc(REF["conv2d_resample/x"]), hwio(REF["conv2d_resample/w3"])

    def loss(x, w):
        outputs = [ops.conv2d_resample(x, w, padding=pad) for pad in (0, 1, 2)]
        probes = np.random.default_rng(0)
        return sum(jnp.sum(y * probes.standard_normal(y.shape).astype(np.float32)) for y in outputs)

    def input_grad_norm(x, w):
        return jnp.sum(jnp.square(jax.grad(loss)(x, w)))

    def derivatives(x, w):
        return loss(x, w), jax.grad(loss, argnums=(0, 1))(x, w), jax.grad(input_grad_norm, argnums=(0, 1))(x, w)

    results = [traced(i, lambda x, w: derivatives(x, w), x, w) for i in ops.IMPLEMENTATIONS]  # one trace each
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
        assert_close(a, b)


def test_up_conv_is_zero_insert_fir_and_flipped_correlation():
    """The up=2 path written out: zero insertion, pad (3, 2), FIR (gain 4), VALID correlation with w[::-1, ::-1]."""
    x = jnp.asarray(nhwc(REF["conv2d_resample/x"]))
    w = hwio(REF["conv2d_resample/w3"])
    f = ops.setup_filter([1, 3, 3, 1])
    up = ops.upfirdn2d(x, f, up=2, padding=(3, 2, 3, 2), gain=4)
    flipped = jax.lax.conv_general_dilated(
        up, w[::-1, ::-1], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    assert_close(ops.conv2d_resample(x, w, f, up=2, padding=1, flip_weight=False), flipped)
    assert_close(flipped, nhwc(REF["conv2d_resample/y/up_flip"]))


@pytest.mark.parametrize("case", cases("bias_act"))
def test_bias_act(case):
    x, b = nhwc(REF["bias_act/x"]), REF["bias_act/b"]
    root2, root_half = np.sqrt(2), np.sqrt(0.5)
    kwargs = {
        "linear": {"act": "linear"},
        "lrelu": {"act": "lrelu"},
        "lrelu_resnet_clamp": {"act": "lrelu", "gain": root2 * root_half, "clamp": 2.5 * root_half},
        "lrelu_alpha": {"act": "lrelu", "alpha": 0.1, "gain": 1.5},
        "relu": {"act": "relu"},
        "relu_clamp0": {"act": "relu", "clamp": 0.0},
        "tanh": {"act": "tanh"},
        "sigmoid": {"act": "sigmoid"},
        "elu": {"act": "elu"},
        "selu": {"act": "selu"},
        "softplus": {"act": "softplus"},
        "swish": {"act": "swish"},
        "linear_clamp_no_bias": {"act": "linear", "clamp": 1.0},
    }[case]
    bias = None if case.endswith("no_bias") else b
    assert_close(ops.bias_act(x, bias, **kwargs), nhwc(REF[f"bias_act/{case}/y"]))


def test_bias_act_clamps_after_gain_and_on_fc_outputs():
    y = ops.bias_act(jnp.array([[-3.0, 0.5, 3.0]]), act="lrelu", gain=2.0, clamp=1.0)
    np.testing.assert_allclose(y, [[-1.0, 1.0, 1.0]])
    assert_close(ops.bias_act(REF["bias_act_fc/x"], REF["bias_act/b"], act="lrelu"), REF["bias_act_fc/y"])


def test_bias_act_unknown_activation():
    with pytest.raises(UserError, match="unknown activation 'gelu'; known: linear, relu, lrelu"):
        ops.bias_act(jnp.zeros(2), act="gelu")


@pytest.mark.parametrize("implementation", ops.IMPLEMENTATIONS)
def test_modulated_conv2d(implementation):
    """Fused and not, demodulated and not, up=2 with the flipped kernel as in SynthesisLayer; noise after demod."""
    x, weight, styles = nhwc(REF["modconv/x"]), hwio(REF["modconv/weight"]), REF["modconv/styles"]
    variants = [(fused, demod, up) for fused in (False, True) for demod in (False, True) for up in (1, 2)]

    def all_variants(x):
        return [
            ops.modulated_conv2d(
                x,
                weight,
                styles,
                nhwc(REF[f"modconv/noise{6 * up}"]),
                up=up,
                padding=1,
                resample_filter=ops.setup_filter([1, 3, 3, 1]),
                demodulate=demod,
                flip_weight=up == 1,
                fused_modconv=fused,
            )
            for fused, demod, up in variants
        ]

    for (fused, demod, up), y in zip(variants, traced(implementation, all_variants, x)):
        assert_close(y, nhwc(REF[f"modconv/fused{int(fused)}_demod{int(demod)}_up{up}/y"]))


def test_modulated_conv2d_without_noise():
    weight, styles = hwio(REF["modconv/weight"]), REF["modconv/styles"]
    y = traced(
        "conv",
        lambda x: ops.modulated_conv2d(x, weight, styles, padding=1, fused_modconv=False),
        nhwc(REF["modconv/x"]),
    )
    assert_close(y, nhwc(REF["modconv/nonoise/y"]))


def test_modulated_conv2d_low_precision_prenormalisation_keeps_the_result():
    x, weight, styles = nhwc(REF["modconv/x"]), hwio(REF["modconv/weight"]), REF["modconv/styles"]
    ref = nhwc(REF["modconv/fused0_demod1_up1/y"]) - nhwc(REF["modconv/noise6"])
    x = jnp.asarray(x, jnp.bfloat16)
    y = traced("matmul", lambda x: ops.modulated_conv2d(x, weight, styles, padding=1, fused_modconv=False), x)
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32), ref, atol=0.05 * np.abs(ref).max())


@pytest.mark.parametrize("case", cases("mbstd"))
def test_minibatch_std(case):
    """Strided grouping (sample n in group n mod N/G), G = min(group_size, N), F channel chunks."""
    x = nhwc(REF["mbstd/x"])
    group_size = int(REF[f"mbstd/{case}/group_size"])
    num_channels = int(REF[f"mbstd/{case}/num_channels"])
    y = ops.minibatch_std(x, None if group_size < 0 else group_size, num_channels)
    assert_close(y[..., : x.shape[-1]], x, 0)
    assert_close(y[..., x.shape[-1] :], nhwc(REF[f"mbstd/{case}/stats"]))


def test_minibatch_std_rejects_indivisible_batch():
    with pytest.raises(UserError, match="divisible by the group size 4"):
        ops.minibatch_std(jnp.zeros((6, 4, 4, 2)), 4)
