from __future__ import annotations

from dtrun.code.delta import compute_delta
from dtrun.code.manifest import Entry, Manifest


def _m(*entries: Entry) -> Manifest:
    return Manifest({e.path: e for e in entries})


A = Entry("a.py", 0o644, 3, "d-a")
BIG = Entry("data/big.bin", 0o644, 10**9, "d-big")
RUN = Entry("run.sh", 0o755, 5, "d-run")


def test_first_upload_sends_every_distinct_object_once() -> None:
    copy = Entry("copy.py", 0o644, 3, "d-a")
    delta = compute_delta(None, _m(A, BIG, copy))
    assert delta.added == ["a.py", "copy.py", "data/big.bin"]
    assert sorted(delta.needed) == ["d-a-644", "d-big-644"] and delta.bytes_to_send == 10**9 + 3


def test_nothing_changed_sends_nothing() -> None:
    delta = compute_delta(_m(A, BIG), _m(A, BIG))
    assert delta.unchanged and not delta.needed


def test_changed_added_deleted_and_renamed() -> None:
    old = _m(A, BIG, RUN)
    new = _m(Entry("a.py", 0o644, 4, "d-a2"), Entry("moved/big.bin", 0o644, 10**9, "d-big"),
             Entry("new.py", 0o644, 1, "d-new"))
    delta = compute_delta(old, new)
    assert delta.changed == ["a.py"]
    assert delta.added == ["new.py"]
    assert delta.deleted == ["run.sh"]
    assert delta.renamed == [("data/big.bin", "moved/big.bin")]
    assert sorted(delta.needed) == ["d-a2-644", "d-new-644"]  # the 1 GB file does not travel again


def test_a_mode_change_is_a_change_with_its_own_object() -> None:
    delta = compute_delta(_m(RUN), _m(Entry("run.sh", 0o644, 5, "d-run")))
    assert delta.changed == ["run.sh"] and list(delta.needed) == ["d-run-644"]


def test_objects_held_from_earlier_trees_are_not_sent() -> None:
    delta = compute_delta(_m(A), _m(A, BIG), held={"d-a-644", "d-big-644"})
    assert delta.added == ["data/big.bin"] and not delta.needed


def test_symlinks_travel_in_the_tree_not_as_objects() -> None:
    link = Entry("latest", 0o777, 0, "d-target", link="data/big.bin")
    delta = compute_delta(_m(BIG), _m(BIG, link))
    assert delta.added == ["latest"] and not delta.needed
