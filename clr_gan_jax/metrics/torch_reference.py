"""torch-fidelity's Inception feature extractor with random weights: the reference of the
parity test and the throughput benchmark. Needs torch and torch-fidelity (test extra).

``import torch_fidelity`` imports torchvision, which does not load with the CPU build
of torch, so the extractor's module is imported without running the package __init__.
"""

import importlib
import os
import sys
import types
from unittest import mock

import numpy as np
import torch
import torch.nn.functional as F


def _import_extractor_module():
    name = "torch_fidelity.feature_extractor_inceptionv3"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("torch_fidelity")
    if spec is None:
        raise ImportError("torch-fidelity is not installed: pip install --no-deps torch-fidelity")
    package = types.ModuleType("torch_fidelity")
    package.__path__ = [os.path.dirname(spec.origin)]
    previous = sys.modules.get("torch_fidelity")
    sys.modules["torch_fidelity"] = package
    try:
        return importlib.import_module(name)
    finally:
        if previous is None:
            del sys.modules["torch_fidelity"]
        else:
            sys.modules["torch_fidelity"] = previous


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """He-normal convs and random BN affine / running statistics, so activations stay O(1) and BN is exercised."""
    generator = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=generator) * std

    def uniform(shape, low, high):
        return low + (high - low) * torch.rand(shape, generator=generator)

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(normal(module.weight.shape, (2.0 / fan_in) ** 0.5))
            elif isinstance(module, torch.nn.BatchNorm2d):
                channels = module.num_features
                module.weight.copy_(uniform(channels, 0.8, 1.2))
                module.bias.copy_(normal(channels, 0.1))
                module.running_mean.copy_(normal(channels, 0.1))
                module.running_var.copy_(uniform(channels, 0.5, 1.5))
            elif isinstance(module, torch.nn.Linear):
                module.weight.copy_(normal(module.weight.shape, module.in_features**-0.5))
                module.bias.copy_(normal(module.bias.shape, 0.1))


def random_extractor(seed: int = 0) -> torch.nn.Module:
    """torch-fidelity's FeatureExtractorInceptionV3 (TF1 resize inside), random weights, eval mode.

    Call it on uint8 NCHW tensors; it returns (pool3,) for features_list ['2048'].
    """
    module = _import_extractor_module()
    with (
        mock.patch.object(module, "load_state_dict_from_url", return_value={}),
        mock.patch.object(module.FeatureExtractorInceptionV3, "load_state_dict"),
    ):
        model = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    _randomise(model, seed)
    return model


def _pytorch_fid_resize(x, size, align_corners):
    """pytorch-fid's input path expressed through torch-fidelity's graph.

    pytorch-fid computes (bilinear(x) - 127.5) / 127.5 with torch's bilinear resize
    (align_corners=False); the graph computes (r - 128) / 128 on what the resize returns,
    so returning bilinear(x) * 128 / 127.5 makes the two identical.
    """
    del align_corners
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False) * (128.0 / 127.5)


def features(model: torch.nn.Module, images: np.ndarray, resize_mode: str) -> np.ndarray:
    """pool3 features of uint8 NHWC ``images`` with torch-fidelity's TF1 resize or pytorch-fid's."""
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    module = sys.modules[type(model).__module__]
    if resize_mode == "tf1":
        resize = module.interpolate_bilinear_2d_like_tensorflow1x
    elif resize_mode == "pytorch":
        resize = _pytorch_fid_resize
    else:
        raise ValueError(f"resize_mode={resize_mode!r} is not 'pytorch' or 'tf1'.")
    with torch.no_grad(), mock.patch.object(module, "interpolate_bilinear_2d_like_tensorflow1x", resize):
        (pool3,) = model(x)
    return pool3.numpy()
