"""A run's workspace: a git repository built deterministically from the run's artifacts.

The build phase writes one commit per build attempt (``build attempt N``) into
``<data dir>/workspaces/<run id>``; the story loop adds one commit per iteration on top of the
build's commit. Every commit is deterministic: a fixed author and committer, dates derived
from the commit's depth in the chain (never from the clock), no user or system git
configuration, no hooks, no templates. So the same artifacts give the same commit SHA on any
machine, and a worker that finds no repository (another worker built it) rebuilds the same one
from the stored artifacts.

Only the build phase ever writes the repository itself, and it builds a fresh copy beside it
and swaps it in. Every later phase attempt (security, story loop, qa) works in a checkout of
its own (``checkout``: a fresh clone at the commit it depends on), so phases that run in
parallel never share a working tree.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ideamine.errors import IdeaMineError
from ideamine.tools.process import ToolRun, run_tool

__all__ = [
    "BRANCH",
    "EPOCH",
    "Commit",
    "RepoManifest",
    "Snapshot",
    "WorkspaceError",
    "build_repository",
    "checkout",
    "checkout_dir",
    "commit_snapshot",
    "ensure_repository",
    "has_commit",
    "read_manifest",
    "workspace_dir",
]

BRANCH = "main"
EPOCH = 946_684_800
"""2000-01-01T00:00:00Z: commit dates are this plus one minute per commit of the chain."""
AUTHOR_NAME = "IdeaMine"
AUTHOR_EMAIL = "ideamine@localhost"
GIT_TIMEOUT = 120.0

_CONFIG = (
    f"user.name={AUTHOR_NAME}",
    f"user.email={AUTHOR_EMAIL}",
    "commit.gpgsign=false",
    "core.hooksPath=/dev/null",
    "core.autocrlf=false",
    "init.defaultBranch=main",
)


class WorkspaceError(IdeaMineError):
    """The workspace could not be built, checked out or committed to.

    ``path`` is the repository or checkout concerned.
    """

    def __init__(self, path: Path, message: str, *, hint: str = "") -> None:
        self.path = path
        super().__init__(f"workspace {path}: {message}", hint=hint)


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """The files of one commit.

    ``whole_tree`` snapshots (build attempts) replace the whole tree; the others (story-loop
    iterations) add or overwrite their files on top of the parent commit.
    """

    message: str
    files: Mapping[str, str]
    whole_tree: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Commit:
    """One commit of the chain."""

    sha: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoManifest:
    """What the repository (or a checkout) holds at its head: docs/evidence.md's RepoManifest."""

    path: Path
    commit: str
    branch: str
    files: tuple[str, ...]
    commits: tuple[Commit, ...]
    evidence: Mapping[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The RepoManifest artifact."""
        return {
            "path": str(self.path),
            "commit": self.commit,
            "branch": self.branch,
            "files": list(self.files),
            "commits": [{"sha": c.sha, "message": c.message} for c in self.commits],
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, object]) -> RepoManifest:
        """Read a RepoManifest artifact back."""
        commits = value.get("commits")
        files = value.get("files")
        evidence = value.get("evidence")
        return cls(
            path=Path(str(value["path"])),
            commit=str(value["commit"]),
            branch=str(value.get("branch", BRANCH)),
            files=tuple(str(f) for f in files) if isinstance(files, list) else (),
            commits=tuple(
                Commit(sha=str(c["sha"]), message=str(c["message"]))
                for c in (commits if isinstance(commits, list) else [])
                if isinstance(c, Mapping)
            ),
            evidence=dict(evidence) if isinstance(evidence, Mapping) else {},
        )


def workspace_dir(data_dir: Path, run_id: str) -> Path:
    """``<data dir>/workspaces/<run id>``: the run's repository."""
    return data_dir / "workspaces" / run_id


def checkout_dir(data_dir: Path, run_id: str, name: str) -> Path:
    """``<data dir>/workspaces/<run id>.checkouts/<name>``: one phase attempt's checkout."""
    return data_dir / "workspaces" / f"{run_id}.checkouts" / name


def build_repository(path: Path, snapshots: Sequence[Snapshot]) -> RepoManifest:
    """Build the repository at ``path`` from scratch, one commit per snapshot, and swap it in.

    The new repository is built beside ``path`` and renamed into place, so a reader never
    sees a half-built one; whatever was at ``path`` before is removed.

    Raises:
        WorkspaceError: no snapshot, an unsafe file path, or a git command failed.
    """
    if not snapshots:
        raise WorkspaceError(path, "nothing to commit", hint="the build produced no files")
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.parent / f".{path.name}.{uuid.uuid4().hex}.new"
    try:
        runs = [_git(path.parent, "init", "-q", "-b", BRANCH, "--template=", str(fresh))]
        for snapshot in snapshots:
            runs.append(_commit(fresh, snapshot))
        with _locked(path):
            _swap(fresh, path)
            return read_manifest(path, runs)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def ensure_repository(path: Path, snapshots: Sequence[Snapshot], commit: str) -> None:
    """Make sure ``path`` holds ``commit``; rebuild it from ``snapshots`` when it does not.

    Raises:
        WorkspaceError: the rebuilt repository's head is not ``commit`` (the stored artifacts
            do not give the recorded workspace), or git failed.
    """
    with _locked(path):
        if has_commit(path, commit):
            return
    rebuilt = build_repository(path, snapshots)
    if rebuilt.commit != commit:
        raise WorkspaceError(
            path,
            f"rebuilt from the stored artifacts at {rebuilt.commit}, expected {commit}",
            hint="the artifacts changed since the build, or the git version commits differently",
        )


def has_commit(path: Path, commit: str) -> bool:
    """True when ``path`` is a repository that holds ``commit``."""
    if not (path / ".git").exists():
        return False
    return _git(path, "cat-file", "-e", f"{commit}^{{commit}}", check=False).ok


def checkout(repo: Path, dest: Path, commit: str, *, branch: str) -> RepoManifest:
    """A fresh clone of ``repo`` at ``dest`` with ``branch`` at ``commit`` checked out.

    Anything at ``dest`` before is removed first, so a retried task starts clean.

    Raises:
        WorkspaceError: ``repo`` does not hold ``commit``, or git failed.
    """
    with _locked(repo):  # never clone while the repository is being swapped
        if not has_commit(repo, commit):
            raise WorkspaceError(repo, f"has no commit {commit}", hint="rebuild the workspace")
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        clone = ("clone", "-q", "--no-checkout", "--template=", str(repo), str(dest))
        runs = [_git(dest.parent, *clone)]
    runs.append(_git(dest, "checkout", "-q", "-B", branch, commit))
    return read_manifest(dest, runs)


def commit_snapshot(repo: Path, snapshot: Snapshot) -> RepoManifest:
    """Write ``snapshot`` into the checkout at ``repo`` and commit it on top of its head.

    Raises:
        WorkspaceError: an unsafe file path, or git failed.
    """
    return read_manifest(repo, [_commit(repo, snapshot)])


def read_manifest(path: Path, runs: Sequence[ToolRun] = ()) -> RepoManifest:
    """The manifest of the repository at ``path``: head, branch, files and commits.

    ``runs`` are the git commands that made it; their evidence is combined into one.
    """
    head = _git(path, "rev-parse", "HEAD").stdout.strip()
    branch = _git(path, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    listed = _git(path, "ls-files", "-z").stdout
    log = _git(path, "log", "--reverse", "--format=%H%x09%s").stdout
    commits = tuple(
        Commit(sha=sha, message=message)
        for sha, _, message in (line.partition("\t") for line in log.splitlines() if line)
    )
    return RepoManifest(
        path=path,
        commit=head,
        branch=branch,
        files=tuple(sorted(name for name in listed.split("\0") if name)),
        commits=commits,
        evidence=_evidence(runs) if runs else {},
    )


def _commit(repo: Path, snapshot: Snapshot) -> ToolRun:
    """Write the snapshot's files, stage exactly them, and make the deterministic commit."""
    paths = [_safe_path(repo, name) for name in sorted(snapshot.files)]
    if snapshot.whole_tree:
        _clear_tree(repo)
        _git(repo, "rm", "-r", "-q", "--cached", "--ignore-unmatch", ".")
    for name, target in zip(sorted(snapshot.files), paths, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(snapshot.files[name].encode("utf-8"))
    with tempfile.NamedTemporaryFile("w", suffix=".paths", delete=False) as listing:
        listing.write("\0".join(sorted(snapshot.files)))
    try:
        if snapshot.files:
            spec = f"--pathspec-from-file={listing.name}"
            _git(repo, "add", "-f", spec, "--pathspec-file-nul")
    finally:
        os.unlink(listing.name)
    depth = _depth(repo) + 1
    return _git(
        repo,
        "commit",
        "-q",
        "--allow-empty",
        "--no-verify",
        "-m",
        snapshot.message,
        dated=EPOCH + 60 * depth,
    )


def _depth(repo: Path) -> int:
    """How many commits the head's chain holds (0 in a fresh repository)."""
    run = _git(repo, "rev-list", "--count", "HEAD", check=False)
    return int(run.stdout.strip()) if run.ok else 0


def _safe_path(repo: Path, name: str) -> Path:
    """``repo / name`` for a relative path that stays inside the tree and outside ``.git``."""
    parts = name.split("/")
    unsafe = "\\" in name or any(part in ("", ".", "..") for part in parts) or parts[0] == ".git"
    if unsafe:
        raise WorkspaceError(repo, f"refusing to write the unsafe path {name!r}")
    return repo.joinpath(*parts)


def _clear_tree(repo: Path) -> None:
    """Remove every file of the working tree but ``.git``."""
    for child in repo.iterdir():
        if child.name == ".git":
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``'s repository (a lock file beside it) meanwhile.

    Workers of one machine that share the data directory take it while they swap a
    repository in or clone from one, so no clone ever reads a half-swapped repository.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{path.name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _swap(fresh: Path, path: Path) -> None:
    """Rename ``fresh`` to ``path``; the old ``path`` is moved aside first, then removed.

    Called under ``_locked``; should a rename still lose a race, the repository that won
    holds the same deterministic commits.
    """
    old = path.parent / f".{path.name}.{uuid.uuid4().hex}.old"
    with contextlib.suppress(FileNotFoundError):
        path.rename(old)
    try:
        fresh.rename(path)
    except OSError:
        if not (path / ".git").exists():
            raise
    shutil.rmtree(old, ignore_errors=True)


def _git(cwd: Path, *args: str, check: bool = True, dated: int | None = None) -> ToolRun:
    """Run git with no user or system configuration and a fixed identity."""
    config = [part for entry in _CONFIG for part in ("-c", entry)]
    env = {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": AUTHOR_NAME,
        "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": AUTHOR_NAME,
        "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
        "GIT_TERMINAL_PROMPT": "0",
        "TZ": "UTC",
        "LC_ALL": "C",
    }
    if dated is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{dated} +0000"
    run = run_tool("git", ["git", *config, *args], cwd=cwd, timeout=GIT_TIMEOUT, env=env)
    if check and not run.ok:
        detail = run.reason or run.stderr.strip() or f"exit code {run.exit_code}"
        raise WorkspaceError(
            cwd,
            f"git {args[0]} failed: {detail}",
            hint="is git (2.28 or later) installed and on PATH?",
        )
    return run


def _evidence(runs: Sequence[ToolRun]) -> dict[str, object]:
    """One envelope for the git commands that made a repository: the last one's, timed as all."""
    envelope = runs[-1].envelope()
    envelope["duration_ms"] = round(sum(run.duration_ms for run in runs), 1)
    envelope["steps"] = len(runs)
    return envelope
