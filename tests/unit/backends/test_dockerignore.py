"""`.dockerignore` read and applied as the docker CLI does (moby's patternmatcher): the legacy builder's
context leaves out exactly what the CLI's would. The integration test compares with the CLI itself."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from dtrun.backends.docker.engineapi.dockerignore import Matcher, build_context, context_paths, read_patterns
from dtrun.errors import DtrunError


def test_lines_are_read_as_the_cli_reads_them() -> None:
    text = "\ufeff# comment\n\n  spaced.txt  \n! kept.txt\n/rooted\na/./b/\n//twice\n  # not a comment\n"
    assert read_patterns(text) == ["spaced.txt", "!kept.txt", "rooted", "a/b", "twice", "# not a comment"]


@pytest.mark.parametrize(("patterns", "path", "ignored"), [
    (["*.md"], "a.md", True),
    (["*.md"], "sub/a.md", False),  # from the root only, unlike .gitignore
    (["**/*.md"], "sub/deep/a.md", True),
    (["**/*.md"], "a.md", True),  # ** matches no folder too
    (["data"], "data/x/y.bin", True),  # a parent folder's match covers what is in it
    (["data", "!data/keep"], "data/keep/z", False),
    (["data", "!data/keep"], "data/other", True),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md", "README*"], "README.md", True),  # the last match decides
    (["**"], "any/thing", True),
    (["a/**/b"], "a/b", True),
    (["a/**/b"], "a/x/y/b", True),
    (["a/**/b"], "a/x/c", False),
    (["?.txt"], "ab.txt", False),
    (["?.txt"], "a.txt", True),
    (["[ab].txt"], "b.txt", True),
    (["[ab].txt"], "c.txt", False),
    (["\\*.txt"], "*.txt", True),
    (["\\*.txt"], "x.txt", False),
    (["a.(b)+"], "a.(b)+", True),  # regex characters mean themselves
    (["sub/*"], "sub/x/y", True),
])
def test_patterns_match_as_docker_matches_them(patterns: list[str], path: str, ignored: bool) -> None:
    assert Matcher(read_patterns("\n".join(patterns))).ignored(path) is ignored


def test_an_exclamation_mark_alone_is_refused() -> None:
    with pytest.raises(DtrunError, match="'!' alone"):
        Matcher(read_patterns("!\n"))


def make(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_the_dockerfile_and_the_ignore_file_are_sent_even_when_matched(tmp_path: Path) -> None:
    root = make(tmp_path, {".dockerignore": "*\n", "Dockerfile": "FROM x\n", "app.py": "", "sub/b.py": ""})
    assert list(context_paths(root)) == [".dockerignore", "Dockerfile"]


def test_an_ignored_folder_is_walked_only_for_the_exceptions_inside_it(tmp_path: Path) -> None:
    root = make(tmp_path, {".dockerignore": "data\nlogs\n!data/keep.txt\n", "data/keep.txt": "",
                           "data/big.bin": "", "data/sub/x": "", "logs/a.log": "", "Dockerfile": ""})
    assert list(context_paths(root)) == [".dockerignore", "Dockerfile", "data/keep.txt"]


def test_without_a_dockerignore_everything_is_sent_links_as_links(tmp_path: Path) -> None:
    root = make(tmp_path, {"Dockerfile": "", "d/a": "x"})
    (root / "link").symlink_to("d")
    with build_context(str(root)) as file, tarfile.open(fileobj=file) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["Dockerfile", "d", "d/a", "link"]
    assert members["link"].issym() and members["link"].linkname == "d"
