"""Sharing models on the Hugging Face Hub (the optional extra ``pip install "segcore[hub]"``).

``segcore.from_pretrained("owner/name")`` and ``model.push_to_hub("owner/name")`` call the
functions here; they go through ``huggingface_hub``, so its cache (``HF_HOME``,
``HF_HUB_CACHE``), offline mode (``HF_HUB_OFFLINE=1``), endpoint (``HF_ENDPOINT``) and token
(``HF_TOKEN``, ``hf auth login``) apply as for any Hub library.

Example::

    from segcore import hub

    folder = hub.download_folder("owner/name", revision="v1")   # config.json + model.safetensors
    card = hub.model_card(model.config, metrics={"iou": 0.81}, dataset="owner/fields")
    url = hub.push_folder(saved_folder, "owner/name")

``huggingface_hub`` is imported inside the functions that need it: importing this module (and
writing a model card) works without it. Every failure is a segcore error that names the
repository and says how to fix it; no exception of huggingface_hub or of its HTTP client
reaches the caller.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from segcore.errors import (
    InvalidOptionError,
    MissingDependencyError,
    SegcoreError,
    WeightsError,
    WeightsNotFoundError,
)

__all__ = ["download_folder", "is_repo_id", "model_card", "push_folder"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "README.md"
#: the files of a segcore model repository (the only ones ``push_folder`` uploads)
HUB_FILES = (CONFIG_FILE, WEIGHTS_FILE, CARD_FILE)
LIBRARY_NAME = "segcore"
INSTALL_LINE = 'pip install "segcore[hub]"'
#: how to authenticate (from_pretrained, push_to_hub and the functions here take token=)
LOGIN_HINT = "log in with `hf auth login` (or set HF_TOKEN, or pass token=...)"
PUSH_LOGIN_HINT = LOGIN_HINT

#: one part of a repository id: 1 to 96 of A-Z a-z 0-9 _ . -, first and last a letter, digit or _
_ID_PART = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?", re.ASCII)
_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")


# -- repository ids ---------------------------------------------------------------------------
def is_repo_id(text: Any) -> bool:
    """Whether ``text`` is a Hub repository id ``"owner/name"`` and not an existing local path.

    The Hub's rules apply to both parts: 1 to 96 characters among letters, digits, ``_``,
    ``.`` and ``-``, starting and ending with a letter, digit or ``_``; no ``--`` or ``..``
    and no ``.git`` ending. A ``pathlib.Path`` is never a repository id.

    Example::

        is_repo_id("smp-hub/unet-resnet34")   # True
        is_repo_id("runs/best")               # False when ./runs/best exists
    """
    if not _is_repo_id_syntax(text):
        return False
    return not os.path.exists(text)


def _is_repo_id_syntax(text: Any) -> bool:
    if not isinstance(text, str):
        return False
    owner, slash, name = text.partition("/")
    if not slash or "/" in name:
        return False
    if not (_ID_PART.fullmatch(owner) and _ID_PART.fullmatch(name)):
        return False
    return "--" not in text and ".." not in text and not text.endswith(".git")


def _check_repo_id(repo_id: Any) -> None:
    if not _is_repo_id_syntax(repo_id):
        raise InvalidOptionError(
            f"{repo_id!r} is not a Hugging Face Hub repository id: it must be 'owner/name', each "
            f"part 1-96 letters, digits, '_', '.' or '-', starting and ending with a letter, digit "
            f"or '_', without '--' or '..' (e.g. 'smp-hub/unet-resnet34')."
        )


# -- huggingface_hub ---------------------------------------------------------------------------
def _require_hub(feature: str) -> Any:
    """The ``huggingface_hub`` module, or ``MissingDependencyError`` with the install line."""
    try:
        import huggingface_hub
    except ImportError as error:
        raise MissingDependencyError(
            f"{feature} needs the package huggingface_hub, which is not installed "
            f"({error}). Install segcore's Hub extra: {INSTALL_LINE}"
        ) from None
    return huggingface_hub


def _offline() -> bool:
    from huggingface_hub import constants

    is_offline = getattr(constants, "is_offline_mode", None)
    return bool(is_offline() if callable(is_offline) else constants.HF_HUB_OFFLINE)


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _repo_cache(repo_id: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    """huggingface_hub's cache folder of a model repository (``.../hub/models--owner--name``)."""
    from huggingface_hub import constants

    root = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE).expanduser()
    return root / ("models--" + repo_id.replace("/", "--"))


def _version() -> str:
    from segcore import __version__

    return str(__version__)


def _hub_errors() -> dict[str, type[BaseException]]:
    """huggingface_hub's exception classes by name (the names exist since 0.24)."""
    from huggingface_hub import utils

    names = (
        "LocalEntryNotFoundError", "GatedRepoError", "RepositoryNotFoundError",
        "RevisionNotFoundError", "EntryNotFoundError", "DisabledRepoError", "HfHubHTTPError",
        "HFValidationError", "OfflineModeIsEnabled", "LocalTokenNotFoundError",
    )
    found = {name: getattr(utils, name, None) for name in names}
    return {name: cls for name, cls in found.items() if isinstance(cls, type)}


def _is_hub_error(error: BaseException, *names: str) -> bool:
    """Whether ``error`` is one of huggingface_hub's exceptions ``names`` (those it defines)."""
    errors = _hub_errors()
    classes = tuple(errors[name] for name in names if name in errors)
    return bool(classes) and isinstance(error, classes)


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def _detail(error: BaseException) -> str:
    """A one-paragraph account of an error of huggingface_hub (or of what caused it)."""
    cause = error.__cause__ or error.__context__
    parts = [f"{type(error).__name__}: {error}"]
    if cause is not None and str(cause) and str(cause) not in str(error):
        parts.append(f"caused by {type(cause).__name__}: {cause}")
    text = " ".join(" ".join(parts).split())
    return text if len(text) <= 400 else text[:397] + "..."


# -- downloads ---------------------------------------------------------------------------------
def download_folder(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
    force_download: bool = False,
) -> Path:
    """Fetch ``config.json`` and ``model.safetensors`` of a Hub repository; return their folder.

    Files go through ``huggingface_hub.hf_hub_download``, so they land in (and are reused
    from) the Hugging Face cache, and ``HF_HUB_OFFLINE=1`` serves them from there without a
    network call. Both files come from the same commit (the one ``revision`` pointed at when
    ``config.json`` was resolved): the returned folder is that commit's snapshot folder.

    Args:
        repo_id: ``"owner/name"``.
        revision: a branch, tag or commit hash; ``None`` is the default branch (``main``).
        cache_dir: the cache folder; ``None`` is huggingface_hub's (``HF_HUB_CACHE``,
            ``HF_HOME/hub``).
        token: a Hub token for private or gated repositories; ``None`` uses the saved one
            (``hf auth login``) or ``HF_TOKEN``; ``False`` sends none.
        force_download: download again even when the files are cached.

    Raises ``MissingDependencyError`` without huggingface_hub, ``InvalidOptionError`` for a bad
    repository id, and ``WeightsNotFoundError`` naming the repository, the revision and what
    to do when the repository, revision or a file does not exist, access is refused, or the
    files are neither reachable nor cached (offline).

    Example::

        folder = download_folder("smp-hub/unet-resnet34", revision="main")
        model = segcore.from_pretrained(folder)
    """
    _check_repo_id(repo_id)
    if revision is not None and (not isinstance(revision, str) or not revision):
        raise InvalidOptionError(
            f"revision must be a branch, tag or commit hash (a string), got {revision!r}"
        )
    _require_hub(f"Loading {repo_id!r} from the Hugging Face Hub")
    from huggingface_hub import hf_hub_download

    if force_download and _offline():
        raise InvalidOptionError(
            f"force_download=True needs the network, but HF_HUB_OFFLINE is set: unset "
            f"HF_HUB_OFFLINE to download {repo_id!r} again, or drop force_download to use the "
            f"cached copy."
        )

    def fetch(filename: str, at: str | None) -> Path:
        try:
            path = hf_hub_download(
                repo_id,
                filename,
                revision=at,
                cache_dir=cache_dir,
                token=token,
                force_download=force_download,
                library_name=LIBRARY_NAME,
                library_version=_version(),
            )
        except SegcoreError:
            raise
        except Exception as error:
            raise _download_error(error, repo_id, revision, filename, cache_dir) from None
        return Path(path)

    config = fetch(CONFIG_FILE, revision)
    snapshot = config.parent
    # The snapshot folder is named by the commit hash: the weights are taken from that very
    # commit, even if the branch moves between the two downloads.
    commit = snapshot.name if _COMMIT_HASH.fullmatch(snapshot.name) else revision
    weights = fetch(WEIGHTS_FILE, commit)
    if weights.parent != snapshot:  # a cache laid out otherwise: never mix two commits
        raise WeightsNotFoundError(
            f"{repo_id!r} (revision {revision or 'main'!r}): {CONFIG_FILE} and {WEIGHTS_FILE} "
            f"were found in different cache folders ({snapshot} and {weights.parent}); clear "
            f"{_repo_cache(repo_id, cache_dir)} and load again (force_download=True)."
        )
    return snapshot


def _download_error(
    error: BaseException,
    repo_id: str,
    revision: str | None,
    filename: str,
    cache_dir: str | os.PathLike[str] | None,
) -> SegcoreError:
    """The segcore error for an exception raised while downloading ``filename``."""
    isa = functools.partial(_is_hub_error, error)
    revision_text = revision or "main"
    where = f"{repo_id!r} (revision {revision_text!r})"
    cache = _repo_cache(repo_id, cache_dir)
    endpoint = _endpoint()
    if isa("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
        if _offline():
            return WeightsNotFoundError(
                f"cannot load {where} from the Hugging Face Hub: HF_HUB_OFFLINE is set and its "
                f"{filename} is not in the cache {cache}. Download it once while online (unset "
                f"HF_HUB_OFFLINE and call segcore.from_pretrained({repo_id!r}) again), point "
                f"HF_HOME or HF_HUB_CACHE at a cache that holds it, or load a local folder "
                f"written by model.save_pretrained()."
            )
        return WeightsNotFoundError(
            f"cannot load {where}: the Hugging Face Hub at {endpoint} could not be reached to "
            f"download {filename}, and it is not in the cache {cache} ({_detail(error)}). Check "
            f"the network connection (and HF_ENDPOINT or proxy settings) and try again; once "
            f"downloaded, the model also loads offline (HF_HUB_OFFLINE=1)."
        )
    if isa("GatedRepoError"):
        return WeightsNotFoundError(
            f"{repo_id!r} is a gated repository and this account has no access to it: request "
            f"access at {endpoint}/{repo_id}, then {LOGIN_HINT} with that account's token."
        )
    if isa("RepositoryNotFoundError"):
        local = f" There is no local folder {repo_id!r} either (relative to {os.getcwd()})."
        return WeightsNotFoundError(
            f"no repository {repo_id!r} on the Hugging Face Hub ({endpoint}): check the "
            f"spelling (owner/name); if it is private, {LOGIN_HINT} with an account that can "
            f"read it.{local}"
        )
    if isa("RevisionNotFoundError"):
        return WeightsNotFoundError(
            f"{repo_id!r} has no revision {revision_text!r} (a branch, tag or commit hash): "
            f"check the name, list them with huggingface_hub.list_repo_refs({repo_id!r}), or "
            f"omit revision= for the default branch."
        )
    if isa("EntryNotFoundError"):
        if filename == CONFIG_FILE:
            return WeightsNotFoundError(
                f"{where} has no {CONFIG_FILE}: not a segcore/SMP model repository. A model "
                f"repository holds {CONFIG_FILE} and {WEIGHTS_FILE}, as written by "
                f"model.push_to_hub() or model.save_pretrained()."
            )
        return WeightsNotFoundError(
            f"{where} has a {CONFIG_FILE} but no {filename}: it holds no segcore/SMP weights "
            f"(older repositories with pytorch_model.bin are not read, since loading never runs "
            f"pickled code). Upload the weights with model.push_to_hub({repo_id!r})."
        )
    if isa("DisabledRepoError"):
        return WeightsNotFoundError(
            f"{repo_id!r} has been disabled on the Hugging Face Hub and cannot be downloaded."
        )
    if isa("HFValidationError"):
        return InvalidOptionError(f"cannot download {where}: {error}")
    status = _status(error)
    if status in (401, 403):
        return WeightsNotFoundError(
            f"the Hugging Face Hub refused access to {where} (HTTP {status}): {LOGIN_HINT} with "
            f"a token that can read it. ({_detail(error)})"
        )
    if status is not None:
        return WeightsNotFoundError(
            f"the Hugging Face Hub answered HTTP {status} for {filename} of {where} and the file "
            f"is not in the cache {cache}; try again later ({_detail(error)})."
        )
    return WeightsNotFoundError(
        f"could not download {filename} of {where} into the cache {cache}: {_detail(error)}. "
        f"Check the network connection and that the cache folder is writable, or set "
        f"HF_HUB_OFFLINE=1 to use a cached copy."
    )


# -- uploads -----------------------------------------------------------------------------------
def push_folder(
    folder: str | os.PathLike[str],
    repo_id: str,
    *,
    revision: str | None = None,
    token: str | bool | None = None,
    private: bool | None = None,
    commit_message: str = "Upload segcore model",
    create_pr: bool = False,
) -> str:
    """Upload a saved model folder (config.json, model.safetensors, README.md) to the Hub.

    Creates the repository when it does not exist (``private`` chooses its visibility; an
    existing repository keeps its own) and the branch ``revision`` when it is new, then makes
    one commit of the three files; other files in the folder are not uploaded.

    Args:
        folder: a folder written by ``model.save_pretrained(folder, model_card=True)``.
        repo_id: ``"owner/name"``.
        revision: the branch to commit to; ``None`` is the default branch.
        token: a Hub token with write access; ``None`` uses the saved one (``hf auth login``)
            or ``HF_TOKEN``.
        private: visibility of a repository created now; ``None`` is the Hub's default.
        commit_message: the commit's summary.
        create_pr: open a pull request with the commit instead of committing to the branch.

    Returns the URL of the commit (of the pull request with ``create_pr=True``).

    Raises ``WeightsNotFoundError`` when the folder lacks config.json or model.safetensors,
    ``InvalidOptionError`` for bad arguments, ``MissingDependencyError`` without
    huggingface_hub, and ``WeightsError`` saying what to do when the Hub refuses the upload
    (not logged in, no write access), cannot be reached, or is offline.

    Example::

        model.save_pretrained("runs/best", model_card=True)
        url = push_folder("runs/best", "owner/unet-fields", private=True)
    """
    _check_repo_id(repo_id)
    folder = Path(folder)
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE) if not (folder / name).is_file()]
    if missing:
        raise WeightsNotFoundError(
            f"{str(folder)!r} has no {' and no '.join(missing)}: push a folder written by "
            f"model.save_pretrained(folder, model_card=True)."
        )
    if not isinstance(commit_message, str) or not commit_message.strip():
        raise InvalidOptionError(
            f"commit_message must be a non-empty string, got {commit_message!r}"
        )
    if revision is not None and (not isinstance(revision, str) or not revision):
        raise InvalidOptionError(f"revision must be a branch name, got {revision!r}")
    if create_pr and revision not in (None, "main"):
        raise InvalidOptionError(
            f"create_pr=True opens a pull request against the default branch; drop "
            f"revision={revision!r}, or drop create_pr to commit to that branch."
        )
    _require_hub(f"Pushing to {repo_id!r} on the Hugging Face Hub")
    from huggingface_hub import HfApi

    if _offline():
        raise WeightsError(
            f"cannot push to {repo_id!r}: HF_HUB_OFFLINE is set, which forbids network calls. "
            f"Unset HF_HUB_OFFLINE to upload."
        )
    api = HfApi(token=token, library_name=LIBRARY_NAME, library_version=_version())
    step = "create the repository"
    try:
        options = {} if private is None else {"private": bool(private)}
        api.create_repo(repo_id, exist_ok=True, **options)
        if revision not in (None, "main") and not _COMMIT_HASH.fullmatch(revision):
            step = f"create the branch {revision!r}"
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        step = "upload the files"
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            revision=revision,
            commit_message=commit_message,
            create_pr=create_pr,
            allow_patterns=list(HUB_FILES),
        )
    except SegcoreError:
        raise
    except Exception as error:
        raise _push_error(error, repo_id, revision, step) from None
    url = getattr(info, "pr_url", None) if create_pr else None
    return str(url or getattr(info, "commit_url", None) or info)


def _push_error(
    error: BaseException, repo_id: str, revision: str | None, step: str
) -> SegcoreError:
    isa = functools.partial(_is_hub_error, error)
    endpoint = _endpoint()
    owner = repo_id.split("/")[0]
    status = _status(error)
    if isa("LocalTokenNotFoundError") or status == 401:
        return WeightsError(
            f"the Hugging Face Hub ({endpoint}) refused to {step} for {repo_id!r}: not logged "
            f"in or the token is invalid. Log in with `hf auth login` (or set HF_TOKEN, or pass "
            f"token=...) with a token that has write access to {owner!r}."
        )
    if status == 403:
        return WeightsError(
            f"the Hugging Face Hub ({endpoint}) refused to {step} for {repo_id!r} (HTTP 403): "
            f"the token has no write access to {owner!r}. Use a token with write permission "
            f"(https://huggingface.co/settings/tokens), then {PUSH_LOGIN_HINT}."
        )
    if isa("RevisionNotFoundError"):
        return WeightsNotFoundError(
            f"cannot push to {repo_id!r}: it has no branch {revision or 'main'!r}; create it "
            f"with huggingface_hub.create_branch({repo_id!r}, branch={revision!r}) or push to "
            f"an existing one."
        )
    if isa("RepositoryNotFoundError"):
        return WeightsNotFoundError(
            f"cannot {step} for {repo_id!r} on the Hugging Face Hub ({endpoint}): the repository "
            f"was not found or is not writable with this token; check the name and "
            f"{PUSH_LOGIN_HINT} with an account that can write to {owner!r}."
        )
    if isa("OfflineModeIsEnabled"):
        return WeightsError(
            f"cannot push to {repo_id!r}: HF_HUB_OFFLINE is set. Unset it to upload."
        )
    if isa("HFValidationError"):
        return InvalidOptionError(f"cannot push to {repo_id!r}: {error}")
    if status is not None:
        return WeightsError(
            f"the Hugging Face Hub ({endpoint}) answered HTTP {status} when trying to {step} "
            f"for {repo_id!r}: {_detail(error)}"
        )
    if isinstance(error, ValueError):  # e.g. the Hub rejected README.md's metadata
        return WeightsError(f"could not {step} for {repo_id!r}: {_detail(error)}")
    return WeightsError(
        f"could not {step} for {repo_id!r}: the Hugging Face Hub at {endpoint} could not be "
        f"reached ({_detail(error)}). Check the network connection (and HF_ENDPOINT or proxy "
        f"settings) and try again."
    )


# -- model cards -------------------------------------------------------------------------------
def model_card(
    config: Mapping[str, Any],
    *,
    metrics: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    license: str = "mit",
    model_name: str | None = None,
) -> str:
    """The text of a model card (``README.md``) for a saved model: YAML metadata, then Markdown.

    The metadata holds ``library_name: segcore``, ``tags`` (segcore, semantic-segmentation,
    pytorch, the architecture, the encoder), ``pipeline_tag``, ``license``, ``datasets``,
    ``metrics`` (names; with a dataset also a ``model-index`` entry with the values), and a
    ``segcore`` section: model class, architecture, encoder, in_channels, classes,
    preprocessing and metric values. The body says how to load the model and lists the same
    facts. Works without huggingface_hub.

    Args:
        config: the dict written to ``config.json`` (``model.config``).
        metrics: metric name -> number, e.g. ``{"iou": 0.81}``.
        dataset: the dataset the metrics were measured on (a Hub dataset id or a name).
        preprocessing: ``{"input_space", "input_range", "mean", "std"}`` of the encoder's
            weights (``segcore.get_preprocessing_params``); taken from
            ``config["preprocessing"]`` when not given.
        license: a Hub license id (``"mit"``, ``"apache-2.0"``, ``"other"``...).
        model_name: the repository id (``"owner/name"``) or a title; the loading example
            uses it when it is a repository id.

    Example::

        text = model_card(model.config, metrics={"iou": 0.81}, dataset="fields",
                          model_name="owner/unet-fields")
        Path("runs/best/README.md").write_text(text, encoding="utf-8")
    """
    facts = _card_facts(config)
    metric_values = _check_metrics(metrics)
    dataset = _check_text("dataset", dataset, optional=True)
    license = _check_text("license", license, optional=False)
    model_name = _check_text("model_name", model_name, optional=True)
    if preprocessing is None and isinstance(config.get("preprocessing"), Mapping):
        preprocessing = config["preprocessing"]
    if preprocessing is not None and not isinstance(preprocessing, Mapping):
        raise InvalidOptionError(
            f"preprocessing must be a mapping such as segcore.get_preprocessing_params(encoder) "
            f"returns, got {type(preprocessing).__name__}"
        )
    preprocessing = _plain(dict(preprocessing)) if preprocessing is not None else None
    metadata = _card_metadata(facts, metric_values, dataset, preprocessing, license, model_name)
    body = _card_body(facts, metric_values, dataset, preprocessing, license, model_name)
    return "---\n" + "\n".join(_yaml_lines(metadata)) + "\n---\n\n" + body


def _card_facts(config: Any) -> dict[str, Any]:
    if not isinstance(config, Mapping):
        raise InvalidOptionError(
            f"config must be the dict written to config.json (model.config), got "
            f"{type(config).__name__}"
        )
    architecture = config.get("_architecture") or config.get("architecture")
    model_class = config.get("_model_class")
    encoder = config.get("encoder_name")
    if not isinstance(encoder, str) or not (
        isinstance(architecture, str) or isinstance(model_class, str)
    ):
        raise InvalidOptionError(
            "config must be the dict written to config.json (model.config): it needs "
            "'encoder_name' and '_architecture' (or 'architecture' or '_model_class'); got the "
            f"keys {sorted(map(str, config))}"
        )
    if not isinstance(architecture, str):
        architecture = str(model_class).lower()
    facts: dict[str, Any] = {
        "architecture": architecture,
        "model_class": model_class if isinstance(model_class, str) else None,
        "encoder": encoder,
    }
    for key in ("encoder_depth", "in_channels", "classes", "activation", "aux_params"):
        if key in config:
            facts[key] = _plain(config[key])
    names = config.get("class_names")
    if isinstance(names, Sequence) and not isinstance(names, str):
        facts["class_names"] = [str(name) for name in names]
    return facts


def _check_metrics(metrics: Any) -> dict[str, float | int]:
    if metrics is None:
        return {}
    if not isinstance(metrics, Mapping):
        raise InvalidOptionError(
            f"metrics must be a mapping of metric name to number, e.g. {{'iou': 0.81}}, got "
            f"{type(metrics).__name__}"
        )
    values: dict[str, float | int] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name.strip():
            raise InvalidOptionError(f"metric names must be non-empty strings, got {name!r}")
        if isinstance(value, bool) or isinstance(value, str):
            raise InvalidOptionError(f"metric {name!r} must be a number, got {value!r}")
        if isinstance(value, int):
            values[name] = value
            continue
        try:
            values[name] = float(value)  # also numpy scalars and one-element tensors
        except (TypeError, ValueError):
            raise InvalidOptionError(
                f"metric {name!r} must be a number, got {type(value).__name__} {value!r}"
            ) from None
    return values


def _check_text(name: str, value: Any, *, optional: bool) -> Any:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidOptionError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _plain(value: Any) -> Any:
    """JSON-like data (tuples as lists, numbers as int or float) for the card."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _card_metadata(
    facts: dict[str, Any],
    metrics: dict[str, float | int],
    dataset: str | None,
    preprocessing: dict[str, Any] | None,
    license: str,
    model_name: str | None,
) -> dict[str, Any]:
    tags = ["segcore", "semantic-segmentation", "pytorch", facts["architecture"], facts["encoder"]]
    metadata: dict[str, Any] = {
        "library_name": LIBRARY_NAME,
        "license": license,
        "pipeline_tag": "image-segmentation",
        "tags": list(dict.fromkeys(tags)),
    }
    if dataset is not None:
        metadata["datasets"] = [dataset]
    if metrics:
        metadata["metrics"] = list(metrics)
    if metrics and dataset is not None:
        metadata["model-index"] = [{
            "name": model_name or _title(facts),
            "results": [{
                "task": {"type": "image-segmentation", "name": "Image Segmentation"},
                "dataset": {"name": dataset, "type": dataset},
                "metrics": [
                    {"type": name, "name": name, "value": value} for name, value in metrics.items()
                ],
            }],
        }]
    section: dict[str, Any] = {
        key: facts[key]
        for key in ("model_class", "architecture", "encoder", "encoder_depth", "in_channels",
                    "classes", "class_names")
        if facts.get(key) is not None
    }
    if preprocessing is not None:
        section["preprocessing"] = preprocessing
    if metrics:
        section["metrics"] = dict(metrics)
    metadata["segcore"] = section
    return metadata


def _title(facts: dict[str, Any]) -> str:
    return f"{facts['model_class'] or facts['architecture']} with a {facts['encoder']} encoder"


def _card_body(
    facts: dict[str, Any],
    metrics: dict[str, float | int],
    dataset: str | None,
    preprocessing: dict[str, Any] | None,
    license: str,
    model_name: str | None,
) -> str:
    title = model_name or _title(facts)
    source = model_name if _is_repo_id_syntax(model_name) else "path/to/this/folder"
    channels = facts.get("in_channels", "C")
    architecture = facts["architecture"]
    shown = f"`{_md(architecture)}`"
    if facts["model_class"]:
        shown = f"`{_md(facts['model_class'])}` ({shown})"
    lines = [
        f"# {_md(title)}",
        "",
        f"A semantic-segmentation model made with [segcore](https://pypi.org/project/segcore/): "
        f"the {shown} architecture with a `{_md(facts['encoder'])}` encoder.",
        "",
        "## How to use",
        "",
        "```python",
        "import segcore",
        "",
        f"model = segcore.from_pretrained({json.dumps(source)})",
        f"masks = model.predict(images)  # images: (N, {channels}, H, W) float tensor, "
        "normalised as below",
        "```",
        "",
        f'Loading from the Hub needs `{INSTALL_LINE}` and the plugins that provide the '
        f"`{_md(architecture)}` architecture and the `{_md(facts['encoder'])}` encoder; "
        "`from_pretrained` names any package that is missing. Loading reads `config.json` and "
        "`model.safetensors` and never runs code from the repository.",
        "",
        "## Model",
        "",
        "| | |",
        "| --- | --- |",
        f"| architecture | {shown} |",
        f"| encoder | `{_md(facts['encoder'])}` |",
    ]
    if "encoder_depth" in facts:
        lines.append(f"| encoder depth | {_md(facts['encoder_depth'])} |")
    if "in_channels" in facts:
        lines.append(f"| input channels | {_md(facts['in_channels'])} |")
    if "classes" in facts:
        lines.append(f"| classes | {_md(facts['classes'])} |")
    if "class_names" in facts:
        lines.append(f"| class names | {', '.join(_md(name) for name in facts['class_names'])} |")
    if "activation" in facts:
        activation = "none (logits)" if facts["activation"] is None else _md(facts["activation"])
        lines.append(f"| output activation | {activation} |")
    if facts.get("aux_params"):
        lines.append(f"| classification head | {_md(json.dumps(facts['aux_params']))} |")
    lines += ["", "The full configuration is in `config.json`.", "", "## Preprocessing", ""]
    if preprocessing:
        lines += ["| | |", "| --- | --- |"]
        for key, label in (("input_space", "input space"), ("input_range", "input range"),
                           ("mean", "mean"), ("std", "std")):
            if key in preprocessing:
                lines.append(f"| {label} | {_md(_inline_text(preprocessing[key]))} |")
        lines += [
            "",
            "Inputs are scaled to the input range, then normalised as `(x - mean) / std` per "
            "channel (`segcore.preprocess_input`).",
        ]
    else:
        lines.append(
            f"Not recorded. If the encoder started from pretrained weights, normalise inputs as "
            f"those weights expect, e.g. `segcore.get_preprocessing_fn("
            f"{json.dumps(facts['encoder'])}, pretrained=\"imagenet\")`."
        )
    if metrics:
        on = f" on `{_md(dataset)}`" if dataset is not None else ""
        lines += ["", "## Evaluation", "", f"Measured{on}:", "", "| metric | value |",
                  "| --- | --- |"]
        lines += [f"| {_md(name)} | {_md(_inline_text(value))} |"
                  for name, value in metrics.items()]
    if dataset is not None:
        lines += ["", "## Training data", "", f"`{_md(dataset)}`"]
    lines += ["", "## License", "", f"{_md(license)}", ""]
    return "\n".join(lines)


def _md(value: Any) -> str:
    """Text safe inside a Markdown table cell or heading (one line, no column breaks)."""
    text = " ".join(str(value).split())
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "'")


def _inline_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_inline_text(item) for item in value) + ")"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


# -- a small YAML writer (block style, every string double-quoted) ----------------------------
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"}


def _yaml_lines(value: Any, indent: int = 0) -> list[str]:
    """Block-style YAML for a mapping or a sequence (the card's metadata)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _is_block(item):
                lines.append(f"{pad}{_yaml_key(key)}:")
                lines += _yaml_lines(item, indent + 2 if isinstance(item, Mapping) else indent)
            else:
                lines.append(f"{pad}{_yaml_key(key)}: {_yaml_inline(item)}")
        return lines
    for item in value:
        if _is_block(item):
            nested = _yaml_lines(item, indent + 2)
            lines.append(f"{pad}- {nested[0][indent + 2:]}")
            lines += nested[1:]
        else:
            lines.append(f"{pad}- {_yaml_inline(item)}")
    return lines


def _is_block(value: Any) -> bool:
    """Mappings and sequences of strings or mappings are written in block style."""
    if isinstance(value, Mapping):
        return bool(value)
    if isinstance(value, (list, tuple)):
        return bool(value) and any(isinstance(item, (str, Mapping, list, tuple)) for item in value)
    return False


def _yaml_key(key: Any) -> str:
    text = str(key)
    if _PLAIN_KEY.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return _yaml_string(text)


def _yaml_inline(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _yaml_float(value)
    if isinstance(value, str):
        return _yaml_string(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_yaml_key(k)}: {_yaml_inline(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_inline(item) for item in value) + "]"
    return _yaml_string(str(value))


def _yaml_float(value: float) -> str:
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    if "e" in text and "." not in text.split("e")[0]:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"  # YAML 1.1 readers need the dot to see a float
    return text


def _yaml_string(text: str) -> str:
    """A double-quoted YAML scalar: quotes, backslashes and unprintable characters escaped."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif (code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF)
              or 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF)):
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)
