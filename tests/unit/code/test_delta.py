from __future__ import annotations

import random

from dtrun.code.delta import MAX_SEARCHES, compute_delta, delta_from_json, differing_rows, rows_of
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


#: Names that look like the text between two rows, quotes, backslashes, commas and non-ASCII.
AWKWARD = ['a],["b', 'q"uote', 'back\\slash', 'c,o,m,m,a', 'ünï', 'x",420,3,"d-a",null]', '],[x', 'end],[', ',lead',
           'plain.py']


def _random_tree(rng: random.Random, names: list[str]) -> dict[str, Entry]:
    tree: dict[str, Entry] = {}
    for name in rng.sample(names, rng.randint(0, len(names))):
        if rng.random() < 0.15:
            tree[name] = Entry(name, 0o777, 0, f"t-{rng.randint(0, 3)}", link=rng.choice(AWKWARD))
        else:
            body = rng.randint(0, 5)
            tree[name] = Entry(name, rng.choice([0o644, 0o755]), body, f"d-{body}")
    return tree


def test_the_delta_from_json_text_is_the_delta_of_the_parsed_manifests() -> None:
    """Only the rows where the texts differ are parsed; whatever the names hold, the answer is the same."""
    rng = random.Random(19)
    names = [f"{a}/{b}" for a in AWKWARD[:4] for b in AWKWARD] + AWKWARD
    compared = 0
    for _ in range(400):
        old, new = _m(*_random_tree(rng, names).values()), _m(*_random_tree(rng, names).values())
        if rng.random() < 0.7:  # mostly a few edits of the old tree, as runs are
            edited = dict(old.entries)
            for name in rng.sample(names, rng.randint(0, 4)):
                edited.pop(name, None) if name in edited and rng.random() < 0.4 else \
                    edited.__setitem__(name, Entry(name, 0o644, 9, f"d-{rng.randint(0, 9)}"))
            new = _m(*edited.values())
        text_delta = delta_from_json(old.json_text, new)
        changed = (new.entries.items() - old.entries.items()) | (old.entries.items() - new.entries.items())
        if text_delta is None:  # a changed row that a split cuts in pieces, or too many changes: parsed whole
            assert any(text.endswith("],[") for _, e in changed for text in (e.path, e.link or "")) or \
                len(new.entries.items() - old.entries.items()) > MAX_SEARCHES
            continue
        assert text_delta == compute_delta(old, new)
        compared += 1
    assert compared > 100


def test_texts_a_split_could_misread_are_left_to_a_whole_parse() -> None:
    """A name ending in `],[` puts a row separator's characters inside a row (harmless while that row
    is unchanged); so many changes that searching the old text for each object costs more than parsing
    it: both are left to the caller."""
    odd = Entry("odd],[", 0o644, 3, "d-odd")
    assert delta_from_json(_m(A, odd).json_text, _m(A)) is None
    assert delta_from_json(_m(A, Entry("link", 0o777, 0, "t", link="to],[")).json_text, _m(A)) is None
    assert delta_from_json(_m(A, odd).json_text, _m(A, odd, BIG)) == compute_delta(_m(A, odd), _m(A, odd, BIG))
    many = _m(*(Entry(f"f{i}", 0o644, 1, f"d-{i}") for i in range(MAX_SEARCHES + 1)))
    assert delta_from_json(_m(A).json_text, many) is None
    assert delta_from_json(_m(A).json_text, _m(A, *list(many.entries.values())[:3])) == \
        compute_delta(_m(A), _m(A, *list(many.entries.values())[:3]))


def test_a_text_that_is_not_a_manifest_gives_no_delta() -> None:
    new = _m(A)
    assert delta_from_json("", new) is None
    assert delta_from_json('{"version":1,"entries":[["a.py",420,3]]}', new) is None  # a short row
    assert delta_from_json('{"version":1,"entries":[["a.py","644",3,"d-a",null]]}', new) is None
    assert delta_from_json('{"version":1,"entries":[]}', new) == compute_delta(None, new)


def test_only_the_stretch_between_the_first_and_last_difference_is_split() -> None:
    rows = [Entry(f"f{i:03d}", 0o644, i, f"d-{i}") for i in range(200)]
    cases = [(rows, rows), (rows, rows[1:]), (rows[1:], rows), (rows, rows[:-1]), (rows[:-1], rows), ([], rows),
             (rows, []), (rows[:1], rows[1:2]), (rows, [*rows[:100], Entry("f100", 0o755, 100, "d-100"), *rows[101:]]),
             (rows, [*rows[:50], *rows[51:150], *rows[151:]])]
    for old, new in cases:
        a, b = _m(*old).json_text, _m(*new).json_text
        found = differing_rows(a, b)
        assert found is not None
        whole = (rows_of(a), rows_of(b))
        assert whole[0] is not None and whole[1] is not None
        assert set(found[0]) ^ set(found[1]) == set(whole[0]) ^ set(whole[1])
        assert len(found[0]) + len(found[1]) < len(whole[0]) + len(whole[1]) or len(old) <= 1 or len(new) <= 1
        got = delta_from_json(a, _m(*new))
        assert got == compute_delta(_m(*old), _m(*new)) or (got is None and len(new) - len(old) > MAX_SEARCHES)
