"""Parity of segcore-mit with SMP 0.6.0 (encoders/mix_transformer.py).

For every name: SMP encoder state dicts (in_channels 3 and 1) load strictly and every feature
agrees at 64x64 and 64x96; the encoder part of an SMP Unet checkpoint loads; the weight
sources are SMP's. Also Segformer with mit_b0 against SMP's, whole checkpoint.
"""

from __future__ import annotations

import pytest
import torch

smp = pytest.importorskip("segmentation_models_pytorch")
segcore = pytest.importorskip("segcore")
pytest.importorskip("segcore_mit")

import smp_pairs  # noqa: E402

from segcore.errors import EncoderCapabilityError  # noqa: E402
from segcore.factory import get_encoder_spec  # noqa: E402

NAMES = ["mit_b0", "mit_b1", "mit_b2", "mit_b3", "mit_b4", "mit_b5"]


@pytest.mark.parametrize("in_channels", [3, 1])
@pytest.mark.parametrize("name", NAMES)
def test_smp_encoder_weights_load_and_features_agree(name: str, in_channels: int) -> None:
    torch.manual_seed(0)
    reference = smp.encoders.get_encoder(name, in_channels=in_channels, weights=None).eval()
    ours = segcore.get_encoder(name, in_channels=in_channels).eval()
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert sum(p.numel() for p in ours.parameters()) == sum(
        p.numel() for p in reference.parameters())
    smp_pairs.assert_features_agree_at_sizes(reference, ours, in_channels, name, batch=2)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_shallower_encoders_agree(depth: int) -> None:
    reference, ours = smp_pairs.smp_and_our_encoder("mit_b0", depth=depth)
    smp_pairs.assert_features_agree_at_sizes(reference, ours, 3, f"mit_b0 depth {depth}",
                                             sizes=[(64, 96)])


@pytest.mark.parametrize("name", ["mit_b0", "mit_b1"])
def test_smp_unet_checkpoint_encoder_part_loads(name: str) -> None:
    smp_pairs.assert_smp_unet_encoder_part_agrees(name, f"{name} from Unet")


@pytest.mark.parametrize("name", NAMES)
def test_weight_sources_are_smps(name: str) -> None:
    from segmentation_models_pytorch.encoders.mix_transformer import mix_transformer_encoders

    entry = mix_transformer_encoders[name]
    spec = get_encoder_spec(name)
    assert set(spec.weights) == set(entry["pretrained_settings"])
    for tag, settings in entry["pretrained_settings"].items():
        assert spec.weights[tag].url == (f"https://huggingface.co/{settings['repo_id']}/resolve/"
                                         f"{settings['revision']}/model.safetensors")
    assert spec.out_channels == tuple(entry["params"]["out_channels"])


@pytest.mark.parametrize("output_stride", [16, 8])
@pytest.mark.parametrize("name", NAMES)
def test_dilation_is_refused(name: str, output_stride: int) -> None:
    # A decision of segcore-mit: SMP 0.6.0 does call make_dilated on MiT (stage 4, and stage 3
    # for 8), dilating every convolution of the stage, the attention's key/value reduction
    # included; segcore refuses dilation for these transformer stages.
    with pytest.raises(EncoderCapabilityError, match="cannot be dilated"):
        segcore.get_encoder(name, output_stride=output_stride)


@pytest.mark.parametrize("size", [(64, 64), (64, 96)])
def test_segformer_with_mit_b0_matches_smp(size: tuple[int, int]) -> None:
    segcore_segformer = pytest.importorskip("segcore_segformer")
    torch.manual_seed(0)
    reference = smp.Segformer(encoder_name="mit_b0", encoder_weights=None).eval()
    ours = segcore_segformer.Segformer(encoder_name="mit_b0", encoder_weights=None).eval()
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    torch.manual_seed(1)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        expected, actual = reference(x), ours(x)
    assert actual.shape == expected.shape == (2, 1, *size)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)
