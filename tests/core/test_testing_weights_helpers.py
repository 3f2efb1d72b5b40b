"""The kit's helpers for encoder weights tests (``segcore.testing``): they pass on a correct
encoder and fail, with a message that says what differed, on a wrong one."""

from __future__ import annotations

import inspect
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path

import attrs
import pytest
import torch
from safetensors.torch import save_file

from segcore import testing, weights
from segcore.errors import ChecksumError, WeightsError
from segcore.specs import EncoderSpec, Preprocessing, WeightSource

FIRST_CONV = "stages.0.0.weight"  # the tiny encoder's first convolution (3x3, stride 2, pad 1)
TINY_CHANNELS = (3, 8, 16, 24, 32, 40)
MEAN = [0.25, 0.5, 0.75]


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return testing.random_state_dict(testing.TinyEncoder())


@pytest.fixture()
def weights_file(tmp_path: Path, state: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_file(state, str(path))
    return path


@pytest.fixture()
def spec() -> EncoderSpec:
    """The tiny encoder with a "demo" tag (never downloaded from its address: the helpers
    serve the test's file instead)."""
    return _demo_spec()


def _demo_spec() -> EncoderSpec:
    """The spec of the ``spec`` fixture: the tiny encoder as "tiny-weights", tag "demo"."""
    source = WeightSource(url="https://example.invalid/tiny.safetensors", sha256="1" * 64,
                          filename="tiny-weights.demo.safetensors",
                          preprocessing=Preprocessing(mean=tuple(MEAN), std=(0.5, 0.5, 0.5)))
    return attrs.evolve(testing.TINY_ENCODER_SPEC, name="tiny-weights",
                        weights={"demo": source}, weight_aliases={"example": "demo"})


def _get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# -- random_state_dict ---------------------------------------------------------------------
def test_random_state_dict_changes_every_tensor_and_keeps_the_layout() -> None:
    module = testing.TinyEncoder()
    original = {key: value.clone() for key, value in module.state_dict().items()}
    state = testing.random_state_dict(module)
    assert state.keys() == original.keys()
    for key, value in state.items():
        assert value.shape == original[key].shape and value.dtype == original[key].dtype, key
        assert not torch.equal(value, original[key]), f"{key} kept its initial value"
        if key.endswith("running_var"):
            assert bool((value >= 0.5).all() and (value < 1.5).all()), key
        elif key.endswith("num_batches_tracked"):
            assert int(value) == int(original[key]) + 7
        else:
            assert bool((value >= -0.5).all() and (value < 0.5).all()), key
    testing.assert_same_state(module, original)  # the module itself is left alone


def test_random_state_dict_is_reproducible_and_follows_the_seed() -> None:
    source = testing.TinyEncoder().state_dict()
    first = testing.random_state_dict(source, seed=3)
    testing.assert_same_state(testing.random_state_dict(source, seed=3), first)
    other = testing.random_state_dict(source, seed=4)
    assert not torch.equal(other[FIRST_CONV], first[FIRST_CONV])


def test_random_state_dict_positive_keys() -> None:
    source = {"norm.weight": torch.zeros(50), "proj.weight": torch.zeros(50),
              "mask": torch.zeros(3, dtype=torch.bool)}
    state = testing.random_state_dict(source, positive=("norm",))
    assert bool((state["norm.weight"] >= 0.5).all())
    assert bool((state["proj.weight"] < 0.5).all() and (state["proj.weight"] < 0).any())
    assert bool(state["mask"].all())


# -- assert_same_state ---------------------------------------------------------------------
def test_assert_same_state_accepts_an_equal_state(state) -> None:
    module = testing.TinyEncoder()
    module.load_state_dict(state)
    testing.assert_same_state(module, state)
    testing.assert_same_state(dict(state), state)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update({FIRST_CONV: s[FIRST_CONV] + 1e-6}), "'stages.0.0.weight' differs"),
    (lambda s: s.pop("stages.4.1.running_var"), r"unexpected 1 \['stages.4.1.running_var'\]"),
    (lambda s: s.update({"extra.weight": torch.zeros(1)}), r"missing 1 \['extra.weight'\]"),
    (lambda s: s.update({FIRST_CONV: s[FIRST_CONV].double()}), "torch.float64"),
    (lambda s: s.update({FIRST_CONV: s[FIRST_CONV][:1]}), r"\(1, 3, 3, 3\)"),
])
def test_assert_same_state_names_what_differs(state, change, message) -> None:
    expected = dict(state)
    change(expected)
    with pytest.raises(AssertionError, match=message):
        testing.assert_same_state(state, expected)


# -- serve_bytes / serve_files ---------------------------------------------------------------
def test_serve_bytes_serves_the_payload_and_records_the_requests() -> None:
    with testing.serve_bytes(b"payload", path="/a/model.safetensors",
                             headers={"ETag": '"x"'}) as server:
        assert server.url == server.base_url + "/a/model.safetensors"
        assert server.base_url.startswith("http://127.0.0.1:")
        status, headers, body = _get(server.url)
        assert (status, body) == (200, b"payload")
        assert headers["Content-Length"] == "7" and headers["ETag"] == '"x"'
        status, headers, body = _get(server.url, method="HEAD")
        assert (status, body, headers["Content-Length"]) == (200, b"", "7")
        assert _get(server.url_of("/other"))[0] == 404
        assert server.requests == ["/a/model.safetensors"] * 2 + ["/other"]
        assert server.calls[1] == ("HEAD", "/a/model.safetensors")


def test_serve_files_serves_what_the_test_adds_meanwhile() -> None:
    with testing.serve_files({}) as server:
        assert _get(server.url_of("/late.bin"))[0] == 404
        server.files["/late.bin"] = b"late"
        assert _get(server.url_of("/late.bin"))[2] == b"late"
    assert server.requests == ["/late.bin", "/late.bin"]


@pytest.mark.parametrize("before", [None, "example.org"])
def test_serve_bytes_sets_no_proxy_and_restores_it(monkeypatch, before) -> None:
    for variable in ("no_proxy", "NO_PROXY"):
        if before is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, before)
    with testing.serve_bytes(b"x"):
        assert os.environ["no_proxy"] == os.environ["NO_PROXY"] == "127.0.0.1,localhost"
    assert os.environ.get("no_proxy") == os.environ.get("NO_PROXY") == before


def test_serve_bytes_shuts_down_even_when_the_block_fails() -> None:
    with pytest.raises(RuntimeError, match="in the block"), testing.serve_bytes(b"x") as server:
        assert _get(server.url)[0] == 200
        raise RuntimeError("in the block")
    assert not [t for t in threading.enumerate() if server.base_url in t.name]
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url, timeout=60)


# -- check_first_conv_adaptation -------------------------------------------------------------
@pytest.mark.parametrize("in_channels", [1, 2, 4])
def test_check_first_conv_adaptation_passes_on_the_core_rules(spec, weights_file, state,
                                                             in_channels) -> None:
    with testing.specs_installed(encoders=[spec]):
        encoder = testing.check_first_conv_adaptation(
            "tiny-weights", weights_file, state, FIRST_CONV, in_channels,
            out_channels=TINY_CHANNELS, conv_reference={"stride": 2, "padding": 1})
    assert encoder.out_channels == (in_channels, *TINY_CHANNELS[1:])


@pytest.mark.parametrize("options, message", [
    ({"first_conv_keys": "stages.1.0.weight"}, r"'stages.1.0.weight' has shape \(16, 8, 3, 3\)"),
    ({"out_channels": (3, 8, 16, 24, 32, 41)}, "out_channels .* expected"),
    ({"conv_reference": {"stride": 2, "padding": 0}}, "differs from F.conv2d"),
    ({"state_change": "stages.2.1.bias"}, "'stages.2.1.bias' differs"),
])
def test_check_first_conv_adaptation_fails_on_a_wrong_expectation(spec, weights_file, state,
                                                                  options, message) -> None:
    expected = dict(state)
    if "state_change" in options:
        key = options.pop("state_change")
        expected[key] = expected[key] + 1
    keys = options.pop("first_conv_keys", FIRST_CONV)
    with testing.specs_installed(encoders=[spec]), pytest.raises(AssertionError, match=message):
        testing.check_first_conv_adaptation("tiny-weights", weights_file, expected, keys, 4,
                                            **options)


def _initialise_the_first_conv_anew(monkeypatch) -> None:
    """The tiny encoder's first convolution is newly initialised instead of derived from RGB."""
    original = testing.TinyEncoder.set_in_channels
    monkeypatch.setattr(testing.TinyEncoder, "set_in_channels",
                        lambda self, channels, pretrained=True: original(self, channels, False))


def test_check_first_conv_adaptation_fails_when_the_kernel_is_not_adapted(
        spec, weights_file, state, monkeypatch) -> None:
    _initialise_the_first_conv_anew(monkeypatch)
    with testing.specs_installed(encoders=[spec]), \
            pytest.raises(AssertionError, match="should be the sum of the RGB kernels"):
        testing.check_first_conv_adaptation("tiny-weights", weights_file, state, FIRST_CONV, 1)


# -- check_weights_download ------------------------------------------------------------------
@pytest.mark.parametrize("in_channels, requested", [
    ((3, 1), None), ((1, 3), ("example", True)), ((4, 2), ("demo", "example")),
])
def test_check_weights_download_passes_through_the_whole_chain(
        spec, weights_file, state, tmp_path, monkeypatch, in_channels, requested) -> None:
    monkeypatch.setenv("SEGCORE_OFFLINE", "1")  # the helper lifts it for its duration
    before = os.environ["SEGCORE_CACHE"]
    testing.check_weights_download("tiny-weights", "demo", weights_file, state,
                                   tmp_path / "cache", spec=spec, first_conv_keys=FIRST_CONV,
                                   in_channels=in_channels, requested=requested,
                                   preprocessing={"mean": MEAN})
    assert (tmp_path / "cache" / "tiny-weights-download-test" / "tiny-weights.demo.safetensors"
            ).is_file()
    assert os.environ["SEGCORE_OFFLINE"] == "1" and os.environ["SEGCORE_CACHE"] == before


def test_check_weights_download_with_the_spec_installed_under_its_own_name(
        spec, weights_file, state, tmp_path) -> None:
    testing.check_weights_download("tiny-weights", "demo", weights_file, state,
                                   tmp_path / "cache", spec=spec, installed_as="tiny-weights",
                                   url_path="/smp-hub/tiny/resolve/abc/model.safetensors",
                                   first_conv_keys=FIRST_CONV)
    assert (tmp_path / "cache" / "tiny-weights" / "tiny-weights.demo.safetensors").is_file()


def _corrupt_cache(monkeypatch) -> None:
    """Every cached file looks corrupt: each build downloads again."""
    monkeypatch.setattr(weights, "_check_cached_file", lambda *args: ("0" * 64, "1" * 64))


@pytest.mark.parametrize("case, message", [
    ("state", "'stages.3.1.running_mean' differs"),
    ("first conv", "'stages.1.0.weight' has shape .*is it the first convolution"),
    ("no first conv", "in_channels=1: name the first convolution's kernel"),
    ("not adapted", "in_channels=1 .*'stages.0.0.weight' differs"),
    ("preprocessing", "gives {'mean'"),
    ("cache file name", "not in the cache at .*tiny.other.safetensors"),
    ("cache not used", "from the cache.*one request"),
    ("cache not empty", "exists before the download"),
])
def test_check_weights_download_fails_on_a_wrong_expectation(
        spec, weights_file, state, tmp_path, monkeypatch, case, message) -> None:
    expected = dict(state)
    options: dict = {"first_conv_keys": FIRST_CONV}
    if case == "state":
        expected["stages.3.1.running_mean"] = expected["stages.3.1.running_mean"] * 2
    elif case == "first conv":
        options["first_conv_keys"] = "stages.1.0.weight"
    elif case == "no first conv":
        options["first_conv_keys"] = ()
    elif case == "not adapted":
        _initialise_the_first_conv_anew(monkeypatch)
    elif case == "preprocessing":
        options["preprocessing"] = {"mean": [0.485, 0.456, 0.406]}
    elif case == "cache file name":
        options["cache_filename"] = "tiny.other.safetensors"
    elif case == "cache not used":
        _corrupt_cache(monkeypatch)
    else:
        folder = tmp_path / "cache" / "tiny-weights-download-test"
        folder.mkdir(parents=True)
        (folder / "tiny-weights.demo.safetensors").write_bytes(weights_file.read_bytes())
    with pytest.raises(AssertionError, match=message):
        testing.check_weights_download("tiny-weights", "demo", weights_file, expected,
                                       tmp_path / "cache", spec=spec, **options)


# -- check_wrong_digest_refused --------------------------------------------------------------
def test_check_wrong_digest_refused_passes_when_the_core_verifies(spec, weights_file,
                                                                   tmp_path) -> None:
    testing.check_wrong_digest_refused("tiny-weights", "demo", weights_file, tmp_path / "cache",
                                       spec=spec)
    folder = tmp_path / "cache" / "tiny-weights-bad-digest"
    assert not folder.exists() or not list(folder.iterdir())


def test_check_wrong_digest_refused_fails_when_the_file_is_not_verified(
        spec, weights_file, tmp_path, monkeypatch) -> None:
    def unverified(url: str, destination: Path, sha256: str | None, what: str) -> str:
        with urllib.request.urlopen(url, timeout=60) as response:
            destination.write_bytes(response.read())
        return str(sha256)

    monkeypatch.setattr(weights, "_download", unverified)
    with pytest.raises(AssertionError, match="were accepted"):
        testing.check_wrong_digest_refused("tiny-weights", "demo", weights_file,
                                           tmp_path / "cache", spec=spec)


def test_check_wrong_digest_refused_fails_when_the_file_is_left_behind(
        spec, weights_file, tmp_path, monkeypatch) -> None:
    def refused_but_kept(url: str, destination: Path, sha256: str | None, what: str) -> str:
        with urllib.request.urlopen(url, timeout=60) as response:
            destination.write_bytes(response.read())
        raise ChecksumError("wrong digest")

    monkeypatch.setattr(weights, "_download", refused_but_kept)
    with pytest.raises(AssertionError, match=r"left \['tiny-weights.demo.safetensors'\]"):
        testing.check_wrong_digest_refused("tiny-weights", "demo", weights_file,
                                           tmp_path / "cache", spec=spec)


# -- EncoderWeightsSuite ---------------------------------------------------------------------
class TestEncoderWeightsSuiteOnTheTinyEncoder(testing.EncoderWeightsSuite):
    """The suite's tests pass on the tiny encoder with its "demo" tag."""

    encoder_name = "tiny-weights"
    first_conv_keys = FIRST_CONV
    out_channels = TINY_CHANNELS
    tag = "demo"
    download_in_channels = (1, 3)
    preprocessing = {"mean": MEAN}
    spec = _demo_spec()


@pytest.mark.parametrize("test, change, message", [
    ("test_weights_file_loads_exactly", {"changed_key": "stages.3.1.bias"}, "'stages.3.1.bias'"),
    ("test_first_conv_is_derived_from_the_rgb_kernel",
     {"out_channels": (3, 8, 16, 24, 32, 41)}, "out_channels .* expected"),
    ("test_tag_is_downloaded_verified_cached_and_adapted",
     {"preprocessing": {"mean": [0.485, 0.456, 0.406]}}, "gives {'mean'"),
    ("test_download_with_a_wrong_digest_is_refused", {"unverified": True}, "were accepted"),
    ("test_unexpected_keys_are_refused",
     {"unexpected_keys": {FIRST_CONV: torch.zeros(8, 3, 3, 3)}}, "was accepted"),
])
def test_encoder_weights_suite_fails_on_a_wrong_expectation(
        weights_file, state, tmp_path, monkeypatch, test, change, message) -> None:
    change, expected = dict(change), dict(state)
    if "changed_key" in change:
        key = change.pop("changed_key")
        expected[key] = expected[key] + 1
    if change.pop("unverified", False):
        def unverified(url: str, destination: Path, sha256: str | None, what: str) -> str:
            with urllib.request.urlopen(url, timeout=60) as response:
                destination.write_bytes(response.read())
            return str(sha256)

        monkeypatch.setattr(weights, "_download", unverified)
    suite = type("Wrong", (TestEncoderWeightsSuiteOnTheTinyEncoder,), change)()
    arguments = {"weights_file": weights_file, "state": expected, "tmp_path": tmp_path}
    method = getattr(suite, test)
    parameters = inspect.signature(method).parameters
    with pytest.raises(AssertionError, match=message):
        method(**{name: arguments[name] for name in parameters})


def test_encoder_weights_suite_fails_when_the_classifier_is_kept(state, tmp_path,
                                                                  monkeypatch) -> None:
    """An encoder whose remapping drops the classifier passes; one that keeps it fails."""
    classifier = {"head.weight": torch.zeros(2), "head.bias": torch.zeros(2)}
    suite = type("WithClassifier", (TestEncoderWeightsSuiteOnTheTinyEncoder,),
                 {"classifier": classifier})()
    with pytest.raises(WeightsError, match=r"head\.weight"):
        suite.test_classifier_file_loads_without_the_classifier(state, tmp_path)

    def drop_the_head(self, state_dict):
        return {k: v for k, v in state_dict.items() if not k.startswith("head.")}

    monkeypatch.setattr(testing.TinyEncoder, "remap_state_dict", drop_the_head)
    suite.test_classifier_file_loads_without_the_classifier(state, tmp_path)
