"""Reading weights files: every unreadable file is a WeightsFileError naming it (items 8, 16)."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import save, save_file

from segcore import weights
from segcore.errors import WeightsFileError, WeightsNotFoundError


def _state() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(4, 3, 3, 3, generator=generator),
        "conv.bias": torch.randn(4, generator=generator),
        "bn.num_batches_tracked": torch.tensor(7),
    }


def _torch_bytes(legacy: bool) -> bytes:
    buffer = io.BytesIO()
    torch.save(_state(), buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def _load(path: Path) -> dict[str, torch.Tensor]:
    return weights.load_state_dict(path)


def _assert_names_the_file(error: pytest.ExceptionInfo[BaseException], path: Path) -> None:
    assert str(path) in str(error.value)


@pytest.mark.parametrize(
    "content",
    [b"hello, these are not weights\n", b"e", b"\x80", b"\x00" * 3,
     json.dumps({"conv.weight": [1, 2, 3]}).encode()],
    ids=["text", "one-letter", "one-byte-pickle-opcode", "three-zeros", "json"],
)
@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".safetensors"])
def test_files_that_are_not_weights(tmp_path, content, suffix):
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(content)
    with pytest.raises(WeightsFileError) as error:
        _load(path)
    _assert_names_the_file(error, path)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_empty_file(tmp_path, suffix):
    path = tmp_path / f"weights{suffix}"
    path.write_bytes(b"")
    with pytest.raises(WeightsFileError, match="empty") as error:
        _load(path)
    _assert_names_the_file(error, path)


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.95])
@pytest.mark.parametrize("kind", ["zip", "legacy", "safetensors"])
def test_truncated_files(tmp_path, kind, fraction):
    data = save(_state()) if kind == "safetensors" else _torch_bytes(legacy=kind == "legacy")
    path = tmp_path / ("cut.safetensors" if kind == "safetensors" else "cut.pth")
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(WeightsFileError, match="corrupt") as error:
        _load(path)
    _assert_names_the_file(error, path)


def test_mutated_legacy_files_raise_weights_file_error(tmp_path):
    # Byte flips in the pickle of a legacy-format file made torch raise KeyError (and
    # IndexError, struct.error, UnicodeDecodeError, AssertionError...) instead of an error
    # about the file. These seeds reproduce some of them.
    data = _torch_bytes(legacy=True)
    surprising: list[str] = []
    for seed in range(300):
        rng = random.Random(seed)
        mutated = bytearray(data)
        for _ in range(2):
            position = rng.randrange(len(mutated))
            mutated[position] ^= 1 << rng.randrange(8)
        path = tmp_path / f"legacy-{seed}.pth"
        path.write_bytes(bytes(mutated))
        try:
            _load(path)
        except WeightsFileError as error:
            assert str(path) in str(error)
        except Exception as error:  # collected and reported below
            surprising.append(f"{seed}: {type(error).__name__}: {error}")
    assert not surprising, surprising


def test_pickle_refusal_keeps_its_message(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (print, ("this would have run code",))

    path = tmp_path / "evil.pth"
    torch.save({"weights": torch.zeros(1), "payload": Exploit()}, path)
    with pytest.raises(WeightsFileError, match="could run code") as error:
        _load(path)
    assert "print" in str(error.value), "the refused object is named"


def test_non_tensor_values_are_not_a_state_dict(tmp_path):
    path = tmp_path / "numbers.pth"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(WeightsFileError, match="does not hold a state dict"):
        _load(path)


def test_directory_says_it_is_a_directory_and_what_file_is_expected(tmp_path):
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    save_file(_state(), str(folder / "model.safetensors"))
    with pytest.raises(WeightsFileError) as error:
        _load(folder)
    message = str(error.value)
    assert "is a directory" in message and "does not exist" not in message
    assert ".safetensors or .pth file" in message
    assert str(folder / "model.safetensors") in message
    assert "It holds model.safetensors" in message


def test_directory_with_a_weights_suffix(tmp_path):
    folder = tmp_path / "weights.pth"
    folder.mkdir()
    with pytest.raises(WeightsFileError, match="is a directory"):
        _load(folder)


def test_missing_file_still_says_it_does_not_exist(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        _load(tmp_path / "absent.safetensors")


def test_device_file_is_not_a_weights_file():
    devnull = Path("/dev/null")
    if not devnull.exists():
        pytest.skip("no /dev/null here")
    with pytest.raises(WeightsFileError, match="not a regular file"):
        _load(devnull)


# -- fuzzing -------------------------------------------------------------------------------
def _mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(("truncate", "flip", "insert"))
    mutated = bytearray(data)
    if kind == "truncate":
        return bytes(mutated[: rng.randrange(len(mutated))])
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(mutated))
            mutated[position] ^= 1 << rng.randrange(8)
        return bytes(mutated)
    position = rng.randrange(len(mutated) + 1)
    mutated[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(mutated)


@pytest.mark.parametrize("kind", ["zip", "legacy", "safetensors"])
def test_mutated_files_load_or_raise_weights_file_error(tmp_path, kind):
    """Seeded: each mutated file gives a dict of tensors or a WeightsFileError naming it."""
    if kind == "safetensors":
        data, suffix = save(_state()), ".safetensors"
    else:
        data, suffix = _torch_bytes(legacy=kind == "legacy"), ".pth"
    rng = random.Random(f"segcore-{kind}")
    outcomes = {"loaded": 0, "refused": 0}
    for index in range(150):
        path = tmp_path / f"mutant-{index}{suffix}"
        path.write_bytes(_mutate(data, rng))
        try:
            state = _load(path)
        except WeightsFileError as error:
            assert str(path) in str(error), error
            outcomes["refused"] += 1
            continue
        assert isinstance(state, dict)
        assert all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
        outcomes["loaded"] += 1
    assert outcomes["refused"] > 50, outcomes  # the mutations do break most files
