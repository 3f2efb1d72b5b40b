"""segcore.hub: repository ids, model cards, and Hub downloads and uploads.

The Hub parts run huggingface_hub's real client code in a child process whose ``HF_ENDPOINT``
is a loopback Hub (``hf_loopback.py``, on 127.0.0.1) and whose ``HF_HOME`` is a temporary
folder: nothing of segcore or huggingface_hub is mocked, and huggingface.co is never
contacted. huggingface_hub reads ``HF_ENDPOINT``, ``HF_HOME`` and ``HF_HUB_OFFLINE`` when it
is imported, hence the child processes. Model-card tests need no huggingface_hub.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from segcore import hub
from segcore.errors import (
    InvalidOptionError,
    MissingDependencyError,
    WeightsError,
    WeightsNotFoundError,
)

sys.path.insert(0, str(Path(__file__).parent))

from hf_loopback import LoopbackHub

HAS_HUB = importlib.util.find_spec("huggingface_hub") is not None
needs_hub = pytest.mark.skipif(not HAS_HUB, reason="needs huggingface_hub (segcore[hub])")
#: generous: CI is a loaded 2-core machine and each child imports huggingface_hub
CHILD_TIMEOUT = 300
TOKEN = "hf_loopbacktoken"

CONFIG = {
    "_model_class": "Unet",
    "_architecture": "unet",
    "encoder_name": "resnet18",
    "encoder_depth": 5,
    "in_channels": 3,
    "classes": 3,
    "activation": None,
    "aux_params": None,
    "decoder_channels": [256, 128, 64, 32, 16],
}
PREPROCESSING = {"input_space": "RGB", "input_range": [0, 1], "mean": [0.485, 0.456, 0.406],
                 "std": [0.229, 0.224, 0.225]}


def _front_matter(card: str) -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    assert card.startswith("---\n")
    metadata, _, _ = card[4:].partition("\n---\n")
    return yaml.safe_load(metadata)


def _model_folder(folder: Path, *, classes: int = 3, card: bool = True, **card_options: Any
                  ) -> Path:
    """A folder as model.save_pretrained(folder, model_card=True) writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {**CONFIG, "classes": classes}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = {"segmentation_head.0.weight": torch.full((classes, 16, 3, 3), float(classes)),
             "segmentation_head.0.bias": torch.arange(classes, dtype=torch.float32)}
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    if card:
        (folder / "README.md").write_text(hub.model_card(config, **card_options), encoding="utf-8")
    return folder


def _files(folder: Path, names: tuple[str, ...] = ("config.json", "model.safetensors")
           ) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in names if (folder / name).exists()}


# -- is_repo_id --------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "owner/name", "smp-hub/unet-resnet34", "a/b", "Org_1/model.v2", "o/" + "n" * 96,
    "user/_private-ish_",
])
def test_repo_ids(text):
    assert hub.is_repo_id(text)


@pytest.mark.parametrize("text", [
    "", "name", "a/b/c", "/abs/path", "a//b", "owner/", "/name", "-owner/name", "owner/name-",
    "owner/.name", "owner/name.", "own--er/name", "owner/na..me", "owner/name.git",
    "own er/name", "café/model", "owner/" + "n" * 97, "C:\\models\\x", "~/models", "./a",
])
def test_not_repo_ids(text):
    assert not hub.is_repo_id(text)


def test_existing_local_path_is_not_a_repo_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert hub.is_repo_id("runs/best")
    (tmp_path / "runs" / "best").mkdir(parents=True)
    assert not hub.is_repo_id("runs/best")


@pytest.mark.parametrize("value", [Path("owner/name"), None, 3, b"owner/name"])
def test_non_strings_are_not_repo_ids(value):
    assert not hub.is_repo_id(value)


# -- model cards (no huggingface_hub needed) ---------------------------------------------------
def test_model_card_metadata():
    card = hub.model_card(CONFIG, metrics={"iou": 0.81, "f1": 0.9}, dataset="owner/fields",
                          preprocessing=PREPROCESSING, license="apache-2.0",
                          model_name="owner/unet-fields")
    metadata = _front_matter(card)
    assert metadata["library_name"] == "segcore"
    assert metadata["pipeline_tag"] == "image-segmentation"
    assert metadata["license"] == "apache-2.0"
    assert metadata["tags"] == ["segcore", "semantic-segmentation", "pytorch", "unet", "resnet18"]
    assert metadata["datasets"] == ["owner/fields"]
    assert metadata["metrics"] == ["iou", "f1"]
    [entry] = metadata["model-index"]
    assert entry["name"] == "owner/unet-fields"
    [result] = entry["results"]
    assert result["task"]["type"] == "image-segmentation"
    assert result["dataset"] == {"name": "owner/fields", "type": "owner/fields"}
    assert [(m["type"], m["value"]) for m in result["metrics"]] == [("iou", 0.81), ("f1", 0.9)]
    assert metadata["segcore"] == {
        "model_class": "Unet", "architecture": "unet", "encoder": "resnet18",
        "encoder_depth": 5, "in_channels": 3, "classes": 3, "preprocessing": PREPROCESSING,
        "metrics": {"iou": 0.81, "f1": 0.9},
    }


def test_model_card_body():
    card = hub.model_card(CONFIG, metrics={"iou": 0.81}, dataset="owner/fields",
                          preprocessing=PREPROCESSING, model_name="owner/unet-fields")
    body = card.split("\n---\n", 1)[1]
    assert body.lstrip().startswith("# owner/unet-fields")
    assert 'segcore.from_pretrained("owner/unet-fields")' in body
    expected = (
        "| architecture | `Unet` (`unet`) |",
        "| encoder | `resnet18` |",
        "| input channels | 3 |",
        "| classes | 3 |",
        "| output activation | none (logits) |",
        "| mean | (0.485, 0.456, 0.406) |",
        "| input range | (0, 1) |",
        "| iou | 0.81 |",
        "Measured on `owner/fields`",
        "## License\n\nmit",
        'pip install "segcore[hub]"',
    )
    for text in expected:
        assert text in body, text


def test_model_card_without_metrics_dataset_or_preprocessing():
    card = hub.model_card(CONFIG)
    metadata = _front_matter(card)
    assert metadata["license"] == "mit"
    for key in ("datasets", "metrics", "model-index"):
        assert key not in metadata
    assert "preprocessing" not in metadata["segcore"]
    assert "## Evaluation" not in card
    assert "Not recorded" in card
    assert 'segcore.get_preprocessing_fn("resnet18", pretrained="imagenet")' in card
    # not a repository id: the loading example shows a folder
    assert 'segcore.from_pretrained("path/to/this/folder")' in card


def test_model_card_metrics_without_dataset_have_no_model_index():
    metadata = _front_matter(hub.model_card(CONFIG, metrics={"iou": 0.5}))
    assert "model-index" not in metadata  # the Hub requires a dataset in a model-index result
    assert metadata["metrics"] == ["iou"]
    assert metadata["segcore"]["metrics"] == {"iou": 0.5}


def test_model_card_reads_older_and_smp_config_keys():
    older = {"architecture": "deeplabv3plus", "encoder_name": "tu-resnest50d", "classes": 5}
    metadata = _front_matter(hub.model_card(older))
    assert metadata["tags"][-2:] == ["deeplabv3plus", "tu-resnest50d"]
    assert metadata["segcore"] == {"architecture": "deeplabv3plus", "encoder": "tu-resnest50d",
                                   "classes": 5}
    smp = {"_model_class": "FPN", "encoder_name": "resnet34", "classes": 2}
    assert _front_matter(hub.model_card(smp))["segcore"]["architecture"] == "fpn"


def test_model_card_preprocessing_from_config():
    card = hub.model_card({**CONFIG, "preprocessing": PREPROCESSING})
    assert _front_matter(card)["segcore"]["preprocessing"] == PREPROCESSING


def test_model_card_yaml_survives_awkward_strings():
    awkward = ['he said "hi": yes', "line\nbreak", "tab\there", "yes", "null", "- dash",
               "#comment", "C:\\path\\", "ünïcødé ✓ \U0001d518", "{braces}", "[1, 2]", "1e3", "@at",
               "del\x7fete", "bell\x07", "nel\x85"]
    for text in awkward:
        config = {**CONFIG, "encoder_name": text}
        metadata = _front_matter(hub.model_card(config, dataset=text, metrics={text: 1.0},
                                                model_name=text))
        assert metadata["segcore"]["encoder"] == text
        assert metadata["datasets"] == [text]
        assert metadata["segcore"]["metrics"] == {text: 1.0}
        assert metadata["model-index"][0]["name"] == text


def test_model_card_numbers_round_trip():
    metrics = {"tiny": 1e-5, "huge": 1e20, "int": 7, "neg": -0.25, "inf": math.inf}
    parsed = _front_matter(hub.model_card(CONFIG, metrics=metrics))["segcore"]["metrics"]
    assert parsed == metrics
    assert isinstance(parsed["tiny"], float) and isinstance(parsed["int"], int)
    nan = _front_matter(hub.model_card(CONFIG, metrics={"nan": math.nan}))
    assert math.isnan(nan["segcore"]["metrics"]["nan"])


def test_model_card_takes_tensor_and_numpy_metrics():
    numpy = pytest.importorskip("numpy")
    metrics = {"iou": torch.tensor(0.5), "f1": numpy.float32(0.25)}
    assert _front_matter(hub.model_card(CONFIG, metrics=metrics))["metrics"] == ["iou", "f1"]


@pytest.mark.parametrize(("config", "options", "words"), [
    (CONFIG, {"metrics": {"iou": "high"}}, "metric 'iou' must be a number"),
    (CONFIG, {"metrics": {"iou": True}}, "metric 'iou' must be a number"),
    (CONFIG, {"metrics": [0.5]}, "metrics must be a mapping"),
    (CONFIG, {"metrics": {"": 0.5}}, "metric names must be non-empty strings"),
    (CONFIG, {"dataset": ""}, "dataset must be a non-empty string"),
    (CONFIG, {"license": None}, "license must be a non-empty string"),
    (CONFIG, {"preprocessing": [0.5]}, "preprocessing must be a mapping"),
    ({"classes": 3}, {}, "needs 'encoder_name'"),
    ([1, 2], {}, "config must be the dict written to config.json"),
])
def test_model_card_rejects_bad_input(config, options, words):
    with pytest.raises(InvalidOptionError, match=words):
        hub.model_card(config, **options)


def test_model_card_does_not_import_huggingface_hub(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import would fail
    assert "library_name: " in hub.model_card(CONFIG, metrics={"iou": 0.5}, dataset="d")


# -- without huggingface_hub, and checks made before any network call --------------------------
def test_missing_huggingface_hub_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "segcore\[hub\]"'):
        hub.download_folder("owner/name")
    folder = _model_folder(tmp_path / "model")
    with pytest.raises(MissingDependencyError, match=r'pip install "segcore\[hub\]"') as error:
        hub.push_folder(folder, "owner/name")
    assert isinstance(error.value, ImportError)


@pytest.mark.parametrize("repo_id", ["name-only", "a/b/c", "owner/name.git", "", None])
def test_bad_repo_ids_are_refused_before_any_request(repo_id, tmp_path):
    with pytest.raises(InvalidOptionError, match="not a Hugging Face Hub repository id"):
        hub.download_folder(repo_id)
    with pytest.raises(InvalidOptionError, match="not a Hugging Face Hub repository id"):
        hub.push_folder(tmp_path, repo_id)


@pytest.mark.parametrize("revision", ["", 3, ["main"]])
def test_bad_revisions_are_refused_before_any_request(revision, tmp_path):
    with pytest.raises(InvalidOptionError, match="revision must be a"):
        hub.download_folder("owner/name", revision=revision)
    with pytest.raises(InvalidOptionError, match="revision must be a"):
        hub.push_folder(_model_folder(tmp_path / "model"), "owner/name", revision=revision)


def test_push_folder_needs_config_and_weights(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(CONFIG))
    with pytest.raises(WeightsNotFoundError, match=r"has no model\.safetensors") as error:
        hub.push_folder(folder, "owner/name")
    assert isinstance(error.value, FileNotFoundError)
    with pytest.raises(WeightsNotFoundError, match=r"no config\.json and no model\.safetensors"):
        hub.push_folder(tmp_path / "missing", "owner/name")


def test_push_folder_refuses_a_pull_request_against_a_branch(tmp_path):
    folder = _model_folder(tmp_path / "model")
    with pytest.raises(InvalidOptionError, match="create_pr=True opens a pull request"):
        hub.push_folder(folder, "owner/name", revision="dev", create_pr=True)


def test_importing_segcore_hub_does_not_import_huggingface_hub():
    code = ("import sys, segcore.hub; "
            "assert 'huggingface_hub' not in sys.modules, 'huggingface_hub was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=CHILD_TIMEOUT)


# -- against the loopback Hub ------------------------------------------------------------------
CHILD = r"""
import json, sys
from segcore import hub
from segcore.errors import SegcoreError

answers = []
for function, args, kwargs in json.loads(sys.argv[1]):
    try:
        result = getattr(hub, function)(*args, **kwargs)
    except Exception as error:
        answers.append({
            "error": type(error).__name__,
            "segcore": isinstance(error, SegcoreError),
            "bases": [cls.__name__ for cls in type(error).__mro__],
            "message": str(error),
        })
    else:
        answers.append({"result": str(result)})
print("ANSWERS " + json.dumps(answers))
"""


@dataclass
class Client:
    """Runs segcore.hub functions in a child process pointed at the loopback Hub."""

    server: LoopbackHub
    home: Path

    @property
    def cache(self) -> Path:
        return self.home / "hub"

    def environment(self, offline: bool, extra: dict[str, str]) -> dict[str, str]:
        keep = {name: value for name, value in os.environ.items()
                if not name.upper().startswith(("HF_", "HUGGINGFACE", "TRANSFORMERS_"))
                and not name.upper().endswith("_PROXY")}
        return {
            **keep,
            "HF_ENDPOINT": self.server.url,
            "HF_HOME": str(self.home),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_ETAG_TIMEOUT": "120",
            "HF_HUB_DOWNLOAD_TIMEOUT": "120",
            "NO_PROXY": "127.0.0.1,localhost",
            "HF_HUB_OFFLINE": "1" if offline else "0",
            **extra,
        }

    def run(self, calls: list[tuple[str, list[Any], dict[str, Any]]], *, offline: bool = False,
            **env: str) -> list[dict[str, Any]]:
        process = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(calls)], capture_output=True, text=True,
            env=self.environment(offline, env), timeout=CHILD_TIMEOUT,
        )
        lines = [line for line in process.stdout.splitlines() if line.startswith("ANSWERS ")]
        assert process.returncode == 0 and lines, (
            f"child failed ({process.returncode}):\n{process.stdout}\n{process.stderr}")
        return json.loads(lines[-1][len("ANSWERS "):])

    def call(self, function: str, *args: Any, offline: bool = False, env: dict | None = None,
             **kwargs: Any) -> dict[str, Any]:
        [answer] = self.run([(function, [str(a) for a in args], kwargs)], offline=offline,
                            **(env or {}))
        return answer

    def download(self, repo_id: str, **kwargs: Any) -> Path:
        answer = self.call("download_folder", repo_id, **kwargs)
        assert "result" in answer, answer
        return Path(answer["result"])


def _error(answer: dict[str, Any], kind: type[Exception]) -> str:
    """The message of a segcore error of type ``kind`` (never a raw huggingface_hub one)."""
    assert "error" in answer, f"expected an error, got {answer}"
    assert answer["segcore"], f"a raw exception reached the caller: {answer}"
    assert kind.__name__ in answer["bases"], answer
    return answer["message"]


@pytest.fixture
def server():
    with LoopbackHub(token=TOKEN) as running:
        yield running


@pytest.fixture
def client(server, tmp_path):
    return Client(server, tmp_path / "hf-home")


@needs_hub
def test_download_then_offline_from_the_cache(server, client, tmp_path):
    local = _model_folder(tmp_path / "local")
    commit = server.commit("owner/unet", _files(local, ("config.json", "model.safetensors",
                                                        "README.md")))
    folder = client.download("owner/unet")
    assert folder == client.cache / "models--owner--unet" / "snapshots" / commit
    assert _files(folder) == _files(local)
    assert not (folder / "README.md").exists()  # only what loading needs
    requested = [(r.method, r.path, r.host.split(":")[0]) for r in server.requests]
    assert ("HEAD", "/owner/unet/resolve/main/config.json", "127.0.0.1") in requested
    # the weights: HEAD answered with a redirect to the CDN host, GET from there
    assert ("HEAD", f"/owner/unet/resolve/{commit}/model.safetensors", "127.0.0.1") in requested
    if server.cdn_host:
        assert any(method == "GET" and path.startswith("/cdn/") and host == server.cdn_host
                   for method, path, host in requested)
    # a second call, offline: served from HF's cache without a request
    before = len(server.requests)
    assert client.download("owner/unet", offline=True) == folder
    assert len(server.requests) == before
    # and online again with nothing changed: only metadata requests, same folder
    assert client.download("owner/unet") == folder
    assert all(r.method == "HEAD" for r in server.requests[before:])


@needs_hub
def test_revision_pinning(server, client, tmp_path):
    first = server.commit("owner/unet", _files(_model_folder(tmp_path / "v1", classes=1)))
    server.commit("owner/unet", {}, branch="v1")  # branch v1 from main (classes=1)
    second = server.commit("owner/unet", _files(_model_folder(tmp_path / "v2", classes=2)))
    calls = [("download_folder", ["owner/unet"], {"revision": revision})
             for revision in (None, "v1", first, second)]
    main, v1, at_first, at_second = (Path(a["result"]) for a in client.run(calls))
    classes = {name: json.loads((folder / "config.json").read_text())["classes"]
               for name, folder in (("main", main), ("v1", v1), ("first", at_first),
                                    ("second", at_second))}
    assert classes == {"main": 2, "v1": 1, "first": 1, "second": 2}
    assert at_first.name == first and main == at_second
    assert _files(at_first) == _files(tmp_path / "v1")
    # offline, the branch resolves through the cached ref
    [offline_v1] = client.run([("download_folder", ["owner/unet"], {"revision": "v1"})],
                              offline=True)
    assert Path(offline_v1["result"]) == v1


@needs_hub
def test_offline_and_not_cached_names_repository_revision_and_cache(server, client, tmp_path):
    server.commit("owner/unet", _files(_model_folder(tmp_path / "local")))
    message = _error(client.call("download_folder", "owner/unet", revision="v3", offline=True),
                     WeightsNotFoundError)
    assert "'owner/unet'" in message and "'v3'" in message
    assert str(client.cache / "models--owner--unet") in message
    assert "HF_HUB_OFFLINE" in message and "unset" in message
    assert server.requests == []
    forced = _error(client.call("download_folder", "owner/unet", force_download=True,
                                offline=True), InvalidOptionError)
    assert "HF_HUB_OFFLINE" in forced


@needs_hub
def test_download_failures_are_segcore_errors(server, client, tmp_path):
    local = _files(_model_folder(tmp_path / "local"))
    server.commit("owner/unet", local)
    server.commit("owner/no-config", {"README.md": b"# notes\n"})
    server.commit("owner/no-weights", {"config.json": local["config.json"],
                                       "pytorch_model.bin": b"pickle"})
    server.create_repository("owner/gated", gated=True)
    server.commit("owner/gated", local)
    answers = client.run([
        ("download_folder", ["owner/missing"], {}),
        ("download_folder", ["owner/no-config"], {}),
        ("download_folder", ["owner/no-weights"], {}),
        ("download_folder", ["owner/unet"], {"revision": "nope"}),
        ("download_folder", ["owner/gated"], {}),
    ])
    missing, no_config, no_weights, no_revision, gated = (
        _error(answer, WeightsNotFoundError) for answer in answers)
    assert "no repository 'owner/missing'" in missing and server.url in missing
    assert "hf auth login" in missing and "HF_TOKEN" in missing
    assert "no local folder 'owner/missing'" in missing
    assert "no config.json: not a segcore/SMP model repository" in no_config
    assert "'owner/no-config'" in no_config
    assert "'owner/no-weights'" in no_weights and "no model.safetensors" in no_weights
    assert "has no revision 'nope'" in no_revision and "'owner/unet'" in no_revision
    assert "'owner/gated' is a gated repository" in gated
    assert f"{server.url}/owner/gated" in gated


@needs_hub
def test_private_repository_needs_the_token(server, client, tmp_path):
    local = _files(_model_folder(tmp_path / "local"))
    server.create_repository("owner/private", private=True)
    server.commit("owner/private", local)
    cache = tmp_path / "own-cache"
    anonymous, with_argument, own_cache = client.run([
        ("download_folder", ["owner/private"], {}),
        ("download_folder", ["owner/private"], {"token": TOKEN}),
        ("download_folder", ["owner/private"], {"token": TOKEN, "cache_dir": str(cache)}),
    ])
    assert "hf auth login" in _error(anonymous, WeightsNotFoundError)
    assert _files(Path(with_argument["result"])) == local
    assert Path(own_cache["result"]).parent.parent == cache / "models--owner--private"
    assert _files(Path(own_cache["result"])) == local
    [with_variable] = client.run([("download_folder", ["owner/private"],
                                   {"force_download": True})], HF_TOKEN=TOKEN)
    assert with_variable["result"] == with_argument["result"]


@needs_hub
@pytest.mark.parametrize("upload", ["pipelined", "single-commit"])
def test_push_then_download_round_trip(server, client, tmp_path, upload):
    # huggingface_hub uploads a folder through its pipeline when hf_xet is installed, through
    # one create_commit otherwise; both have the Hub validate README.md's metadata first
    env = {"HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1" if upload == "single-commit" else "0"}
    folder = _model_folder(tmp_path / "best", metrics={"iou": 0.81, "accuracy": 0.93},
                           dataset="owner/fields", preprocessing=PREPROCESSING,
                           model_name="owner/unet-fields")
    (folder / "notes.txt").write_text("not uploaded")
    pushed, again = client.run([
        ("push_folder", [str(folder), "owner/unet-fields"], {"private": True}),
        ("push_folder", [str(folder), "owner/unet-fields"], {}),
    ], **env)
    stored = server.files("owner/unet-fields")
    commit = server.repositories["owner/unet-fields"].branches["main"]
    assert pushed["result"] == f"{server.url}/owner/unet-fields/commit/{commit}"
    assert again["result"] == pushed["result"]  # nothing changed: no second commit
    assert server.repositories["owner/unet-fields"].private
    assert set(stored) == {".gitattributes", "config.json", "model.safetensors", "README.md"}
    assert {name: stored[name] for name in ("config.json", "model.safetensors", "README.md")} \
        == _files(folder, ("config.json", "model.safetensors", "README.md"))
    assert any(r.path == "/api/validate-yaml" for r in server.requests)  # the card's YAML

    # the private repository, downloaded into a fresh cache with the token
    downloaded = Client(server, tmp_path / "other-home").download("owner/unet-fields",
                                                                   token=TOKEN)
    assert _files(downloaded) == _files(folder)

    card = stored["README.md"].decode()
    metadata = _front_matter(card)
    assert metadata["library_name"] == "segcore"
    assert metadata["license"] == "mit"
    assert {"segcore", "semantic-segmentation", "pytorch", "unet", "resnet18"} <= set(
        metadata["tags"])
    assert metadata["segcore"]["architecture"] == "unet"
    assert metadata["segcore"]["model_class"] == "Unet"
    assert metadata["segcore"]["encoder"] == "resnet18"
    assert metadata["segcore"]["classes"] == 3
    assert metadata["segcore"]["preprocessing"] == PREPROCESSING
    assert metadata["segcore"]["metrics"] == {"iou": 0.81, "accuracy": 0.93}
    # huggingface_hub reads the card as the Hub does, metrics included
    from huggingface_hub import ModelCard

    data = ModelCard(card).data
    assert data.library_name == "segcore"
    assert {(r.metric_type, r.metric_value, r.dataset_name) for r in data.eval_results} == {
        ("iou", 0.81, "owner/fields"), ("accuracy", 0.93, "owner/fields")}


@needs_hub
def test_push_to_a_new_branch(server, client, tmp_path):
    main = _model_folder(tmp_path / "main", classes=1)
    server.commit("owner/unet", _files(main))
    branch = _model_folder(tmp_path / "v2", classes=2)
    [pushed] = client.run([("push_folder", [str(branch), "owner/unet"], {"revision": "v2"})],
                          HF_TOKEN=TOKEN)
    commit = server.repositories["owner/unet"].branches["v2"]
    assert pushed["result"].endswith(f"/owner/unet/commit/{commit}")
    assert _files_of(server, "owner/unet", "main") == _files(main)
    assert _files_of(server, "owner/unet", "v2") == _files(branch)
    assert _files(client.download("owner/unet", revision="v2")) == _files(branch)


def _files_of(server: LoopbackHub, repo_id: str, revision: str) -> dict[str, bytes]:
    files = server.files(repo_id, revision)
    return {name: files[name] for name in ("config.json", "model.safetensors")}


@needs_hub
def test_push_failures_are_segcore_errors(server, client, tmp_path):
    folder = _model_folder(tmp_path / "model")
    server.create_repository("other/unet")
    no_token, bad_token = client.run([
        ("push_folder", [str(folder), "owner/unet"], {}),
        ("push_folder", [str(folder), "other/unet"], {"token": "hf_wrong"}),
    ])
    for message in (_error(no_token, WeightsError), _error(bad_token, WeightsError)):
        assert "refused to" in message
        assert "hf auth login" in message and "HF_TOKEN" in message and "token=" in message
    assert "'owner'" in _error(no_token, WeightsError)
    assert "owner/unet" not in server.repositories
    [offline] = client.run([("push_folder", [str(folder), "owner/unet"], {})], offline=True,
                           HF_TOKEN=TOKEN)
    assert "HF_HUB_OFFLINE" in _error(offline, WeightsError)


def test_docs_show_the_current_model_card():
    page = Path(__file__).parents[2] / "docs" / "hub.md"
    if not page.is_file():
        pytest.skip("docs/hub.md is not in this checkout")
    config = {"_model_class": "Unet", "_architecture": "unet", "encoder_name": "resnet34",
              "encoder_depth": 5, "in_channels": 3, "classes": 3, "activation": None,
              "aux_params": None}
    card = hub.model_card(config, metrics={"iou": 0.812, "accuracy": 0.934},
                          dataset="owner/fields", preprocessing=PREPROCESSING,
                          model_name="owner/unet-fields")
    assert card.rstrip("\n") + "\n````" in page.read_text(encoding="utf-8"), (
        "docs/hub.md shows an outdated model card: paste the output of hub.model_card() again")
