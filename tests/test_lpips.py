"""LPIPS (AlexNet, v0.1) in JAX against a plain-torch LPIPS, with random weights, through the converter.

The torch reference follows the published LPIPS definition (richzhang/PerceptualSimilarity): scaling
layer, torchvision AlexNet ``features`` (rebuilt here from torch.nn layers: torchvision does not import
on CPU-only machines), channel-wise unit normalisation, squared difference, 1x1 ``lin`` convolutions
without bias, spatial mean, sum over the five layers. Its state dicts are saved in the key layout of
the real files (``features.N.*`` / ``classifier.N.*`` and ``linI.model.1.weight``).
"""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the parity test needs torch (test extra: pip install torch)")

import jax
import jax.numpy as jnp

from clr_gan_jax import npz
from clr_gan_jax.errors import UserError
from clr_gan_jax.metrics import convert_lpips, lpips

nn = torch.nn
# The published constants, written out here so that the reference does not share them with the code under test.
_TAPS = (1, 4, 7, 9, 11)  # indices of the ReLUs in AlexNet().features
_CHANNELS = (64, 192, 384, 256, 256)
_SHIFT, _SCALE, _EPS = (-0.030, -0.088, -0.188), (0.458, 0.448, 0.450), 1e-10
SHAPES = [(3, 48, 40), (2, lpips.MIN_SIZE, 35)]


class TorchAlexNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
        )


class TorchLinLayer(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class TorchLins(nn.Module):
    def __init__(self):
        super().__init__()
        for i, channels in enumerate(_CHANNELS):
            layer = TorchLinLayer(channels)
            nn.init.uniform_(layer.model[1].weight, 0.0, 1.0)  # the trained weights are clamped to >= 0
            setattr(self, f"lin{i}", layer)


def torch_lpips(alexnet, lins, x, y):
    """Per-sample LPIPS of NCHW torch tensors in [-1, 1]."""
    shift = torch.tensor(_SHIFT).view(1, 3, 1, 1)
    scale = torch.tensor(_SCALE).view(1, 3, 1, 1)

    def taps(images):
        out, h = [], (images - shift) / scale
        for i, layer in enumerate(alexnet.features[: _TAPS[-1] + 1]):
            h = layer(h)
            if i in _TAPS:
                out.append(h / (torch.sqrt(torch.sum(h**2, dim=1, keepdim=True)) + _EPS))
        return out

    distance = 0
    for i, (fx, fy) in enumerate(zip(taps(x), taps(y))):
        distance = distance + getattr(lins, f"lin{i}").model((fx - fy) ** 2).mean(dim=(2, 3), keepdim=True)
    return distance.flatten()


def torch_distances_and_grads(alexnet, lins, x, y):
    """Distances and d(sum of distances)/d(x, y) for NHWC numpy images, returned in NHWC."""
    tx, ty = (torch.tensor(a.transpose(0, 3, 1, 2), requires_grad=True) for a in (x, y))
    distance = torch_lpips(alexnet, lins, tx, ty)
    distance.sum().backward()
    to_nhwc = lambda t: t.detach().numpy().transpose(0, 2, 3, 1)
    return distance.detach().numpy(), to_nhwc(tx.grad), to_nhwc(ty.grad)


def images(shape, seed):
    return np.random.default_rng(seed).uniform(-1, 1, (*shape, 3)).astype(np.float32)


def rel_error(actual, expected):
    return np.abs(np.asarray(actual) - expected).max() / np.abs(expected).max()


@pytest.fixture(scope="module")
def torch_nets():
    torch.manual_seed(0)
    return TorchAlexNet().eval(), TorchLins().eval()


def save_torch_files(alexnet, lins, directory):
    """The two .pth files in the real files' key layout (classifier tensors shrunk: the converter skips them)."""
    state = dict(alexnet.state_dict())
    state.update({f"classifier.{i}.{leaf}": torch.zeros(2) for i in (1, 4, 6) for leaf in ("weight", "bias")})
    paths = str(directory / "alexnet.pth"), str(directory / "alex.pth")
    torch.save(state, paths[0])
    torch.save(lins.state_dict(), paths[1])
    return paths


@pytest.fixture(scope="module")
def torch_files(torch_nets, tmp_path_factory):
    return save_torch_files(*torch_nets, tmp_path_factory.mktemp("lpips_torch"))


@pytest.fixture(scope="module")
def variables(torch_files, tmp_path_factory):
    dest = str(tmp_path_factory.mktemp("lpips_npz") / "lpips_alex.npz")
    convert_lpips.convert(*torch_files, dest)
    return lpips.load_lpips(dest)


@pytest.fixture(scope="module")
def distances_and_grads():
    """One jitted function for all tests: (distances, (d sum / dx, d sum / dy))."""

    def total(variables, x, y):
        distances = lpips.lpips_distance(variables, x, y)
        return distances.sum(), distances

    value_and_grad = jax.jit(jax.value_and_grad(total, argnums=(1, 2), has_aux=True))

    def distances_and_grads(variables, x, y):
        (_, distances), grads = value_and_grad(variables, x, y)
        return distances, grads

    return distances_and_grads


@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch(torch_nets, variables, distances_and_grads, shape):
    x, y = images(shape, 1), images(shape, 2)
    expected, expected_gx, expected_gy = torch_distances_and_grads(*torch_nets, x, y)
    distances, (gx, gy) = distances_and_grads(variables, x, y)
    assert distances.shape == (shape[0],)
    assert np.all(expected > 1e-2)  # the random network does not collapse the distances to 0
    print(f"{shape}: distance rel {rel_error(distances, expected):.1e}, grad rel {rel_error(gx, expected_gx):.1e}")
    np.testing.assert_allclose(distances, expected, rtol=1e-5)
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))
    assert rel_error(gx, expected_gx) < 3e-5 and rel_error(gy, expected_gy) < 3e-5


def test_distance_to_itself_is_zero(variables, distances_and_grads):
    """Zero up to float32 rounding (the two halves of the batched AlexNet pass round differently)."""
    x = images(SHAPES[0], 3)
    distances, (gx, gy) = distances_and_grads(variables, x, x)
    _, (g_apart, _) = distances_and_grads(variables, x, images(SHAPES[0], 4))
    np.testing.assert_allclose(distances, 0.0, atol=1e-10)
    assert max(np.abs(gx).max(), np.abs(gy).max()) < 1e-6 * np.abs(g_apart).max()


def test_gradients_finite_where_a_layer_is_all_zero(torch_nets, distances_and_grads):
    """conv5's bias far below 0 makes relu5 0 everywhere: its norm is 0, the input gradients stay finite."""
    alexnet, lins = copy.deepcopy(torch_nets[0]), torch_nets[1]
    with torch.no_grad():
        alexnet.features[10].bias.fill_(-1e3)
    state = {name: t.numpy() for name, t in alexnet.state_dict().items()}
    lin = {name: t.numpy() for name, t in lins.state_dict().items()}
    params = {**convert_lpips.alexnet_to_flax(state, "test"), **convert_lpips.lin_to_flax(lin, "test")}
    variables = {"params": npz.unflatten(params)}
    x, y = images(SHAPES[0], 4), images(SHAPES[0], 5)
    expected, expected_gx, _ = torch_distances_and_grads(alexnet, lins, x, y)
    distances, (gx, gy) = distances_and_grads(variables, x, y)
    assert np.all(np.isfinite(gx)) and np.all(np.isfinite(gy)) and np.abs(gx).max() > 0
    np.testing.assert_allclose(distances, expected, rtol=1e-5)
    assert rel_error(gx, expected_gx) < 3e-5


def test_converted_file_layout(torch_nets, variables):
    alexnet, lins = torch_nets
    params = variables["params"]
    assert {name: v.shape for name, v in npz.flatten(params).items()} == lpips.variable_shapes()
    conv2 = alexnet.features[3].weight.detach().numpy()  # (out, in, kh, kw)
    np.testing.assert_array_equal(params["alexnet"]["conv2"]["kernel"][1, 4, 7, 9], conv2[9, 7, 1, 4])
    np.testing.assert_array_equal(params["lin3"], lins.lin2.model[1].weight.detach().numpy().reshape(-1))


def test_too_small_or_mismatched_images_are_refused(torch_nets, variables):
    small = jnp.zeros((1, lpips.MIN_SIZE - 1, 64, 3))
    with pytest.raises(RuntimeError):  # MIN_SIZE is the smallest size that torch's AlexNet accepts too
        torch_lpips(*torch_nets, torch.zeros(1, 3, lpips.MIN_SIZE - 1, 64), torch.zeros(1, 3, lpips.MIN_SIZE - 1, 64))
    with pytest.raises(UserError, match=f"at least {lpips.MIN_SIZE}x{lpips.MIN_SIZE}"):
        lpips.lpips_distance(variables, small, small)
    with pytest.raises(UserError, match="one shape"):
        lpips.lpips_distance(variables, jnp.zeros((1, 32, 32, 3)), jnp.zeros((1, 32, 40, 3)))
    with pytest.raises(UserError, match="RGB"):
        lpips.lpips_distance(variables, jnp.zeros((1, 32, 32, 1)), jnp.zeros((1, 32, 32, 1)))


def test_converter_errors(torch_nets, torch_files, tmp_path):
    alexnet_path, lin_path = torch_files
    dest = str(tmp_path / "out.npz")
    with pytest.raises(UserError, match="alexnet-owt-7be5be79"):
        convert_lpips.convert(str(tmp_path / "absent.pth"), lin_path, dest)
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(UserError, match="not a PyTorch state dict"):
        convert_lpips.convert(alexnet_path, str(tmp_path / "text.pth"), dest)
    with pytest.raises(UserError, match="no tensor 'features.0.weight'"):
        convert_lpips.convert(lin_path, lin_path, dest)  # the two files swapped

    state = {name: t.clone() for name, t in torch_nets[0].state_dict().items()}
    state["features.3.weight"] = torch.zeros(192, 64, 3, 3)
    torch.save(state, tmp_path / "misshaped.pth")
    with pytest.raises(UserError, match=r"'features.3.weight' has shape \(192, 64, 3, 3\), expected \(192, 64, 5, 5\)"):
        convert_lpips.convert(str(tmp_path / "misshaped.pth"), lin_path, dest)
    torch.save({**torch_nets[1].state_dict(), "lin5.model.1.weight": torch.zeros(1, 8, 1, 1)}, tmp_path / "extra.pth")
    with pytest.raises(UserError, match="unexpected tensors.*lin5"):
        convert_lpips.convert(alexnet_path, str(tmp_path / "extra.pth"), dest)


def test_loader_errors(torch_files, tmp_path):
    with pytest.raises(UserError, match="absent.npz not found: .*convert_lpips"):
        lpips.load_lpips(str(tmp_path / "absent.npz"))
    (tmp_path / "text.npz").write_text("not an archive")
    with pytest.raises(UserError, match="text.npz is not a readable .npz"):
        lpips.load_lpips(str(tmp_path / "text.npz"))
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(UserError, match="single .npy array"):
        lpips.load_lpips(str(tmp_path / "array.npy"))
    with pytest.raises(UserError, match="does not hold the LPIPS AlexNet weights"):
        lpips.load_lpips(torch_files[1])  # a .pth is a zip archive too, with other names
    np.savez(
        tmp_path / "short.npz",
        **{name: np.zeros(shape) for name, shape in lpips.variable_shapes().items() if name != "lin5"},
    )
    with pytest.raises(UserError, match=r"missing \['lin5'\]"):
        lpips.load_lpips(str(tmp_path / "short.npz"))
