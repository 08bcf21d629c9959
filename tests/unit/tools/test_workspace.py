"""ideamine.tools.workspace with real git: deterministic commits, rebuilds, isolated checkouts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ideamine.tools.workspace import (
    RepoManifest,
    Snapshot,
    WorkspaceError,
    build_repository,
    checkout,
    checkout_dir,
    commit_snapshot,
    ensure_repository,
    has_commit,
    workspace_dir,
)

ATTEMPTS = (
    Snapshot(
        message="build attempt 1",
        files={"backend/app/main.py": "print('one')\n", "README.md": "# One\n"},
    ),
    Snapshot(
        message="build attempt 2",
        files={"backend/app/main.py": "print('two')\n", "frontend/index.html": "<p>é</p>\n"},
    ),
)


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def test_same_snapshots_give_the_same_commit_sha_in_two_places(tmp_path: Path) -> None:
    first = build_repository(tmp_path / "a" / "run1", ATTEMPTS)
    second = build_repository(tmp_path / "b" / "run1", ATTEMPTS)
    assert first.commit == second.commit
    assert [c.sha for c in first.commits] == [c.sha for c in second.commits]
    assert [c.message for c in first.commits] == ["build attempt 1", "build attempt 2"]
    assert first.branch == "main"


def test_user_and_system_git_configuration_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = build_repository(tmp_path / "plain", ATTEMPTS)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        "[user]\n\tname = Someone Else\n\temail = else@example.com\n"
        "[commit]\n\tgpgsign = true\n[core]\n\tautocrlf = true\n"
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Intruder")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    configured = build_repository(tmp_path / "configured", ATTEMPTS)
    assert configured.commit == plain.commit
    author = _git(tmp_path / "configured", "log", "-1", "--format=%an <%ae> %ad", "--date=raw")
    assert author == "IdeaMine <ideamine@localhost> 946684920 +0000"


def test_commit_sha_is_the_same_on_every_machine(tmp_path: Path) -> None:
    """Nothing machine- or time-dependent goes into a commit, so its SHA is a constant."""
    made = build_repository(tmp_path / "run", ATTEMPTS[:1])
    tree = _git(tmp_path / "run", "rev-parse", "HEAD^{tree}")
    body = (
        f"tree {tree}\nauthor IdeaMine <ideamine@localhost> 946684860 +0000\n"
        "committer IdeaMine <ideamine@localhost> 946684860 +0000\n\nbuild attempt 1\n"
    )
    recomputed = subprocess.run(
        ["git", "hash-object", "-t", "commit", "--stdin"],
        input=body,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert made.commit == recomputed


def test_the_same_files_give_this_commit_sha_anywhere(tmp_path: Path) -> None:
    assert build_repository(tmp_path / "run", ATTEMPTS).commit == (
        "ae3e391b44bd80075c4d7f284b8fe04bf37ecc6f"
    )


def test_each_build_attempt_replaces_the_whole_tree(tmp_path: Path) -> None:
    made = build_repository(tmp_path / "run", ATTEMPTS)
    assert made.files == ("backend/app/main.py", "frontend/index.html")
    assert not (tmp_path / "run" / "README.md").exists()
    assert (tmp_path / "run" / "frontend" / "index.html").read_text() == "<p>é</p>\n"
    assert _git(tmp_path / "run", "status", "--porcelain") == ""


def test_an_attempt_with_the_same_files_still_gets_its_commit(tmp_path: Path) -> None:
    same = (ATTEMPTS[0], Snapshot(message="build attempt 2", files=ATTEMPTS[0].files))
    made = build_repository(tmp_path / "run", same)
    assert len(made.commits) == 2
    assert made.commits[0].sha != made.commits[1].sha


def test_rebuilding_replaces_the_old_repository(tmp_path: Path) -> None:
    repo = tmp_path / "run"
    build_repository(repo, ATTEMPTS[:1])
    (repo / "stray.txt").write_text("left over")
    made = build_repository(repo, ATTEMPTS)
    assert len(made.commits) == 2
    assert not (repo / "stray.txt").exists()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".run.lock", "run"]  # no temporary folder left behind


def test_checkout_is_a_separate_working_tree(tmp_path: Path) -> None:
    repo = tmp_path / "run"
    built = build_repository(repo, ATTEMPTS)
    dest = tmp_path / "checkouts" / "story-loop-1"
    first = checkout(repo, dest, built.commits[0].sha, branch="story-loop")
    assert first.commit == built.commits[0].sha
    assert first.branch == "story-loop"
    story = Snapshot(
        message="story-loop iteration 1: US-001",
        files={"backend/app/stories/us_001.py": "VALUE = 1\n"},
        whole_tree=False,
    )
    after = commit_snapshot(dest, story)
    assert "README.md" in after.files and "backend/app/stories/us_001.py" in after.files
    assert [c.message for c in after.commits][-1] == "story-loop iteration 1: US-001"
    assert _git(repo, "rev-parse", "HEAD") == built.commit  # the build's repository is untouched
    assert not has_commit(repo, after.commit)


def test_story_commits_are_deterministic_too(tmp_path: Path) -> None:
    repo = tmp_path / "run"
    built = build_repository(repo, ATTEMPTS)
    story = Snapshot(message="story 1", files={"x.py": "X = 1\n"}, whole_tree=False)
    shas = []
    for name in ("one", "two"):
        checkout(repo, tmp_path / name, built.commit, branch="story-loop")
        shas.append(commit_snapshot(tmp_path / name, story).commit)
    assert shas[0] == shas[1]


def test_checkout_again_starts_clean(tmp_path: Path) -> None:
    repo = tmp_path / "run"
    built = build_repository(repo, ATTEMPTS)
    dest = tmp_path / "co"
    checkout(repo, dest, built.commit, branch="qa-1")
    (dest / "junk.txt").write_text("from a crashed try")
    again = checkout(repo, dest, built.commit, branch="qa-1")
    assert not (dest / "junk.txt").exists()
    assert again.commit == built.commit


def test_checkout_of_an_unknown_commit_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "run"
    build_repository(repo, ATTEMPTS)
    with pytest.raises(WorkspaceError, match="has no commit"):
        checkout(repo, tmp_path / "co", "0" * 40, branch="x")


def test_ensure_repository_rebuilds_a_missing_workspace(tmp_path: Path) -> None:
    original = build_repository(tmp_path / "elsewhere" / "run", ATTEMPTS)
    here = tmp_path / "here" / "run"
    assert not has_commit(here, original.commit)
    ensure_repository(here, ATTEMPTS, original.commit)
    assert has_commit(here, original.commit)
    ensure_repository(here, (), original.commit)  # already there: nothing to rebuild


def test_ensure_repository_refuses_artifacts_that_give_another_commit(tmp_path: Path) -> None:
    original = build_repository(tmp_path / "elsewhere", ATTEMPTS)
    changed = (ATTEMPTS[0], Snapshot(message="build attempt 2", files={"other.txt": "x"}))
    with pytest.raises(WorkspaceError, match="expected"):
        ensure_repository(tmp_path / "here", changed, original.commit)


@pytest.mark.parametrize("bad", ["../escape.py", "/etc/passwd", ".git/config", "a//b", "a/./b"])
def test_unsafe_paths_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(WorkspaceError, match="unsafe path"):
        build_repository(tmp_path / "run", (Snapshot(message="m", files={bad: "x"}),))
    assert not (tmp_path / "escape.py").exists()


def test_nothing_to_commit_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="nothing to commit"):
        build_repository(tmp_path / "run", ())


def test_manifest_round_trips_through_json(tmp_path: Path) -> None:
    made = build_repository(tmp_path / "run", ATTEMPTS)
    recorded = made.to_json()
    assert recorded["commit"] == made.commit
    assert recorded["files"] == sorted(made.files)
    assert recorded["evidence"]["tool"] == "git"  # type: ignore[index]
    assert recorded["evidence"]["executed"] is True  # type: ignore[index]
    back = RepoManifest.from_json(recorded)
    assert back.commit == made.commit
    assert back.commits == made.commits
    assert back.files == made.files


def test_paths_of_a_run(tmp_path: Path) -> None:
    assert workspace_dir(tmp_path, "r1") == tmp_path / "workspaces" / "r1"
    assert checkout_dir(tmp_path, "r1", "qa-1-E2ETestAgent").parent.name == "r1.checkouts"
