"""A Hugging Face Hub on 127.0.0.1 for tests: the HTTP endpoints huggingface_hub calls.

It keeps model repositories in memory (branches pointing at commits, each commit a dict of
path -> bytes) and answers as the Hub does, headers and error codes included, so that
``hf_hub_download``, ``HfApi.create_repo``, ``create_branch`` and ``upload_folder`` run their
real code against it. Point a client at it with ``HF_ENDPOINT=server.url``.

Endpoints (``{repo}`` is ``owner/name``, ``{revision}`` a branch or a commit hash, URL-quoted):

- ``HEAD``/``GET /{repo}/resolve/{revision}/{path}``: the file, with ``X-Repo-Commit``,
  ``ETag`` (git blob sha1), ``Content-Length``. Files named in ``lfs_suffixes`` answer as the
  Hub answers for LFS files: ``302`` to a CDN URL on another host name (``localhost``, which
  huggingface_hub treats as not-the-Hub; inline where localhost is not 127.0.0.1), with
  ``X-Linked-Etag`` (sha256) and ``X-Linked-Size``; the CDN is ``GET``/``HEAD
  /cdn/{sha256}`` on this same server.
  Errors: ``401`` + ``X-Error-Code: RepoNotFound`` (missing or private repository, as for an
  anonymous request), ``403`` + ``GatedRepo``, ``404`` + ``RevisionNotFound`` or
  ``EntryNotFound`` (with ``X-Repo-Commit``).
- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{revision}``: repository info
  (``id``, ``sha``, ``siblings``...).
- ``POST /api/repos/create``: ``{"name", "organization", ...}``; ``409`` when it exists.
- ``POST /api/models/{repo}/branch/{branch}``: a branch from ``startingPoint`` or main;
  ``409`` when it exists.
- ``POST /api/models/{repo}/preupload/{revision}``: every file ``uploadMode: "regular"`` (so
  contents go inline in the commit), with the ``oid`` (git sha1) of the file already there.
- ``POST /api/models/{repo}/commit/{revision}``: the NDJSON commit (``header``, ``file``
  base64, ``deletedFile``); answers ``commitUrl`` and ``commitOid``.
- ``POST /api/validate-yaml``: README metadata checked with ``yaml.safe_load`` when PyYAML is
  installed.

With ``token`` set, every write needs ``Authorization: Bearer <token>`` (``401`` otherwise)
and private repositories are readable with it only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SERVER_HOST = "127.0.0.1"
#: the host name of the simulated CDN: another name for the loopback address
CDN_HOST = "localhost"


def _cdn_host() -> str | None:
    """``localhost`` where it names 127.0.0.1 (the server's address), else None (no CDN)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(CDN_HOST, None)}
    except OSError:
        return None
    return CDN_HOST if SERVER_HOST in addresses else None


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a file's content (the Hub's ETag of a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repository:
    private: bool = False
    gated: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)

    def resolve(self, revision: str) -> str | None:
        """The commit hash a branch or commit hash names, or None."""
        if revision in self.branches:
            return self.branches[revision]
        return revision if revision in self.commits else None


@dataclass
class Request:
    method: str
    path: str
    host: str
    authorization: str | None


class LoopbackHub:
    """The server and its repositories. Use as a context manager, or ``start()``/``stop()``."""

    def __init__(self, token: str | None = None, lfs_suffixes: tuple[str, ...] = (".safetensors",)):
        self.token = token
        #: where LFS files redirect to; None (files served inline) where localhost is not 127.0.0.1
        self.cdn_host = _cdn_host()
        self.lfs_suffixes = lfs_suffixes if self.cdn_host else ()
        self.repositories: dict[str, Repository] = {}
        #: what the CDN serves: sha256 -> content (filled when a resolve request redirects)
        self.blobs: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self._commit_counter = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LoopbackHub:
        server = ThreadingHTTPServer((SERVER_HOST, 0), _handler_class(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="loopback-hub",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._server = self._thread = None

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The endpoint (``HF_ENDPOINT``)."""
        return f"http://{SERVER_HOST}:{self.port}"

    # -- repositories ---------------------------------------------------------------------------
    def create_repository(self, repo_id: str, *, private: bool = False, gated: bool = False
                          ) -> Repository:
        """An empty repository whose ``main`` holds only ``.gitattributes``, as on the Hub."""
        with self._lock:
            repository = Repository(private=private, gated=gated)
            self.repositories[repo_id] = repository
            sha = self._new_commit_id(repo_id)
            repository.commits[sha] = {".gitattributes": b"*.safetensors filter=lfs diff=lfs "
                                                         b"merge=lfs -text\n"}
            repository.branches["main"] = sha
        return repository

    def commit(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main") -> str:
        """Add or replace files on ``branch`` (created from main when new); the new commit id."""
        if repo_id not in self.repositories:
            self.create_repository(repo_id)
        with self._lock:
            repository = self.repositories[repo_id]
            parent = repository.branches.get(branch, repository.branches["main"])
            sha = self._new_commit_id(repo_id)
            repository.commits[sha] = {**repository.commits[parent], **files}
            repository.branches[branch] = sha
        return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repository = self.repositories[repo_id]
        commit = repository.resolve(revision)
        assert commit is not None, f"{repo_id} has no revision {revision}"
        return dict(repository.commits[commit])

    def _new_commit_id(self, repo_id: str) -> str:
        self._commit_counter += 1
        return hashlib.sha1(f"{repo_id}:{self._commit_counter}".encode()).hexdigest()

    def authorised(self, authorization: str | None) -> bool:
        return self.token is None or authorization == f"Bearer {self.token}"


def _handler_class(hub: LoopbackHub) -> type[BaseHTTPRequestHandler]:
    class Handler(_HubHandler):
        pass

    Handler.hub = hub
    return Handler


class _HubHandler(BaseHTTPRequestHandler):
    hub: LoopbackHub
    server_version = "LoopbackHub/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest's output clean
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", f"loopback-{id(self):x}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, status: int, message: str, code: str | None = None,
               headers: dict[str, str] | None = None) -> None:
        extra = {"X-Error-Message": message, **(headers or {})}
        if code is not None:
            extra["X-Error-Code"] = code
        self._json(status, {"error": message}, extra)

    def _record(self) -> tuple[list[str], dict[str, list[str]]]:
        parts = urlsplit(self.path)
        self.hub.requests.append(Request(self.command, parts.path, self.headers.get("Host", ""),
                                         self.headers.get("Authorization")))
        segments = [unquote(segment) for segment in parts.path.split("/")[1:]]
        return segments, parse_qs(parts.query)

    def _readable(self, repo_id: str) -> Repository | None:
        """The repository, or None after answering 401/403 as the Hub does."""
        repository = self.hub.repositories.get(repo_id)
        authorised = self.hub.authorised(self.headers.get("Authorization"))
        if repository is None or (repository.private and not authorised):
            self._error(401, "Repository not found", "RepoNotFound")
            return None
        if repository.gated and not (self.hub.token and authorised):
            self._error(403, f"Access to model {repo_id} is restricted and you are not in the "
                             f"authorized list. Visit {self.hub.url}/{repo_id} to ask for access.",
                        "GatedRepo")
            return None
        return repository

    def _writable(self, repo_id: str) -> Repository | None:
        if not self.hub.authorised(self.headers.get("Authorization")):
            self._error(401, "Invalid credentials in Authorization header")
            return None
        repository = self.hub.repositories.get(repo_id)
        if repository is None:
            self._error(404, "Repository not found", "RepoNotFound")
        return repository

    # -- methods --------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._get()

    def do_GET(self) -> None:
        self._get()

    def do_POST(self) -> None:
        segments, query = self._record()
        body = self._body()
        if segments == ["api", "repos", "create"]:
            return self._create_repository(json.loads(body or b"{}"))
        if segments == ["api", "validate-yaml"]:
            return self._validate_yaml(json.loads(body or b"{}"))
        if len(segments) >= 6 and segments[:2] == ["api", "models"]:
            repo_id, action, revision = "/".join(segments[2:4]), segments[4], "/".join(segments[5:])
            if action == "preupload":
                return self._preupload(repo_id, revision, json.loads(body or b"{}"))
            if action == "commit":
                return self._commit(repo_id, revision, body, query)
            if action == "branch":
                return self._create_branch(repo_id, revision, json.loads(body or b"{}"))
        self._error(404, f"the loopback Hub does not serve POST {self.path}")

    def _get(self) -> None:
        segments, _ = self._record()
        if len(segments) == 2 and segments[0] == "cdn":
            return self._cdn(segments[1])
        if len(segments) >= 4 and segments[:2] == ["api", "models"]:
            repo_id = "/".join(segments[2:4])
            if len(segments) == 4:
                return self._info(repo_id, "main")
            if len(segments) >= 6 and segments[4] == "revision":
                return self._info(repo_id, "/".join(segments[5:]))
        if len(segments) >= 5 and segments[2] == "resolve":
            return self._resolve("/".join(segments[:2]), segments[3], "/".join(segments[4:]))
        self._error(404, f"the loopback Hub does not serve {self.command} {self.path}")

    # -- downloads ------------------------------------------------------------------------------
    def _readable_commit(self, repo_id: str, revision: str) -> tuple[Repository, str] | None:
        """The repository and the commit of ``revision``, or None after answering the error."""
        repository = self._readable(repo_id)
        if repository is None:
            return None
        commit = repository.resolve(revision)
        if commit is None:
            self._error(404, "Invalid rev id: " + revision, "RevisionNotFound")
            return None
        return repository, commit

    def _resolve(self, repo_id: str, revision: str, path: str) -> None:
        found = self._readable_commit(repo_id, revision)
        if found is None:
            return
        repository, commit = found
        content = repository.commits[commit].get(path)
        if content is None:
            self._error(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit})
            return
        headers = {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(content)}"',
                   "Accept-Ranges": "bytes"}
        if path.endswith(self.hub.lfs_suffixes):
            sha256 = hashlib.sha256(content).hexdigest()
            self.hub.blobs[sha256] = content
            headers.update({
                "X-Linked-Etag": f'"{sha256}"',
                "X-Linked-Size": str(len(content)),
                "Location": f"http://{self.hub.cdn_host}:{self.hub.port}/cdn/{sha256}",
            })
            self._send(302, b"", headers, content_type="text/plain")
            return
        self._send(200, content, headers, content_type="application/octet-stream")

    def _cdn(self, sha256: str) -> None:
        content = self.hub.blobs.get(sha256)
        if content is None:
            self._send(404, b"NoSuchKey", content_type="text/plain")
            return
        self._send(200, content, {"ETag": f'"{sha256}"'}, content_type="application/octet-stream")

    def _info(self, repo_id: str, revision: str) -> None:
        found = self._readable_commit(repo_id, revision)
        if found is None:
            return
        repository, commit = found
        self._json(200, {
            "id": repo_id, "modelId": repo_id, "sha": commit, "private": repository.private,
            "gated": repository.gated, "disabled": False, "tags": [],
            "lastModified": "2025-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": path} for path in sorted(repository.commits[commit])],
        })

    # -- uploads --------------------------------------------------------------------------------
    def _create_repository(self, payload: dict[str, Any]) -> None:
        if not self.hub.authorised(self.headers.get("Authorization")):
            self._error(401, "Invalid username or password.")
            return
        if payload.get("type", "model") != "model":
            self._error(400, "the loopback Hub only has model repositories")
            return
        repo_id = f"{payload['organization']}/{payload['name']}"
        url = f"{self.hub.url}/{repo_id}"
        if repo_id in self.hub.repositories:
            self._json(409, {"error": "You already created this model repo", "url": url})
            return
        private = payload.get("private") or payload.get("visibility") == "private"
        self.hub.create_repository(repo_id, private=bool(private))
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def _create_branch(self, repo_id: str, branch: str, payload: dict[str, Any]) -> None:
        repository = self._writable(repo_id)
        if repository is None:
            return
        if branch in repository.branches:
            self._error(409, f"Reference refs/heads/{branch} already exists")
            return
        start = repository.resolve(payload.get("startingPoint") or "main")
        if start is None:
            self._error(404, "Invalid rev id: " + str(payload.get("startingPoint")),
                        "RevisionNotFound")
            return
        repository.branches[branch] = start
        self._json(200, {})

    def _validate_yaml(self, payload: dict[str, Any]) -> None:
        content = str(payload.get("content", ""))
        errors = []
        if content.startswith("---\n"):
            metadata = content[4:].split("\n---", 1)[0]
            try:
                import yaml
            except ImportError:
                yaml = None
            if yaml is not None:
                try:
                    yaml.safe_load(metadata)
                except yaml.YAMLError as error:
                    errors.append({"message": f"invalid YAML: {error}"})
        if errors:
            self._json(400, {"errors": errors, "warnings": []})
        else:
            self._json(200, {"errors": [], "warnings": []})

    def _preupload(self, repo_id: str, revision: str, payload: dict[str, Any]) -> None:
        repository = self._writable(repo_id)
        if repository is None:
            return
        commit = repository.resolve(revision)
        if commit is None:
            self._error(404, "Invalid rev id: " + revision, "RevisionNotFound")
            return
        existing = repository.commits[commit]
        files = [{
            "path": entry["path"],
            "uploadMode": "regular",
            "shouldIgnore": False,
            "oid": git_blob_sha1(existing[entry["path"]]) if entry["path"] in existing else None,
        } for entry in payload.get("files", [])]
        self._json(200, {"files": files, "commitOid": commit})

    def _commit(self, repo_id: str, revision: str, body: bytes, query: dict[str, list[str]]
                ) -> None:
        repository = self._writable(repo_id)
        if repository is None:
            return
        if query.get("create_pr"):
            self._error(400, "the loopback Hub does not open pull requests")
            return
        if revision not in repository.branches:
            self._error(404, "Invalid rev id: " + revision, "RevisionNotFound")
            return
        files = dict(repository.commits[repository.branches[revision]])
        summary = None
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary")
            elif key == "file" and value.get("encoding") == "base64":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            else:
                self._error(400, f"the loopback Hub does not take {key!r} commit entries")
                return
        if not summary:
            self._error(400, "a commit needs a summary")
            return
        sha = self.hub.commit(repo_id, files, branch=revision)
        self._json(200, {
            "success": True, "commitOid": sha,
            "commitUrl": f"{self.hub.url}/{repo_id}/commit/{sha}",
            "pullRequestUrl": None,
        })
