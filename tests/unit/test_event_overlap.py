"""Exact overlap of event rules (`tidings.services.event_overlap`), against brute force.

The model is deliberately naive: strings are enumerated, atoms are matched with
`startswith`/`endswith`/`==` written out here, and event types are expanded from a table
copied from spec event-sources §2.1. `satisfiable`, `find_conflict` and the admission of
rules through `check_can_add` must agree with it exactly, and every witness they return
must really match.

Why a bounded enumeration decides satisfiability (so "brute force finds nothing" means
"no string at all"): atoms are drawn over ALPHABET; any character outside ALPHABET can be
replaced by FRESH in a witness without changing any atom's verdict (no atom text contains
either, so no prefix/suffix/name comparison can start or stop succeeding). And if a
conjunction has a witness w, it has one no longer than BOUND: with a positive full name,
w is that name (≤ MAX_NAME); otherwise let P and S be the longest positive prefix and
suffix. W = P + FRESH + S meets every positive atom (their prefixes are prefixes of P,
since w starts with all of them; likewise suffixes), differs from every name, and violates
a negated prefix/suffix atom only if that atom's prefix is a prefix of P and its suffix a
suffix of S (FRESH stops any longer match) - in which case w, starting with P and ending
with S, violates it too. So |W| ≤ MAX_TEXT + 1 + MAX_TEXT = BOUND. (The cruder bound "total
length of all atom texts + 1" would also do, but costs far more strings.)
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from tidings.errors import ServiceError
from tidings.services.event_overlap import (
    MatchAtom,
    MatchRules,
    describe,
    overlap,
    satisfiable,
)
from tidings.services.event_rules import (
    DEFAULT_RESOURCE,
    DEFAULT_RULE_NAME,
    EventRule,
    RuleEndpoint,
    check_can_add,
    find_conflict,
    new_rule,
    shared_event_types,
)

ALPHABET = "ab/"
FRESH = "#"
MAX_TEXT = 3
MAX_NAME = 4
BOUND = MAX_TEXT + 1 + MAX_TEXT
UNIVERSE = [
    "".join(chars)
    for length in range(BOUND + 1)
    for chars in itertools.product(ALPHABET + FRESH, repeat=length)
]
EVERYTHING = (1 << len(UNIVERSE)) - 1

# Spec §2.1, written out independently of the implementation's registry.
OSS_SHORT = {
    "PutObject": "ObjectCreated:PutObject",
    "PostObject": "ObjectCreated:PostObject",
    "CopyObject": "ObjectCreated:CopyObject",
    "InitiateMultipartUpload": "ObjectCreated:InitiateMultipartUpload",
    "UploadPart": "ObjectCreated:UploadPart",
    "UploadPartCopy": "ObjectCreated:UploadPartCopy",
    "CompleteMultipartUpload": "ObjectCreated:CompleteMultipartUpload",
    "AppendObject": "ObjectCreated:AppendObject",
    "AbortMultipartUpload": "ObjectRemoved:AbortMultipartUpload",
    "GetObject": "ObjectDownloaded:GetObject",
    "DeleteObject": "ObjectRemoved:DeleteObject",
    "DeleteObjects": "ObjectRemoved:DeleteObjects",
    "FinishRestore": "ObjectRestore:FinishRestore",
}
OSS_GROUPS = {
    "ObjectCreatedGroup": "ObjectCreated:",
    "ObjectDownloadedGroup": "ObjectDownloaded:",
    "ObjectRemovedGroup": "ObjectRemoved:",
}
EMITTED = [
    *OSS_SHORT.values(),
    "ObjectReplication:ObjectCreated",
    "ObjectReplication:ObjectRemoved",
    "ObjectReplication:ObjectModified",
    "ObjectModified:ChangeStorageClass",
]
TYPE_POOL = [
    "PutObject",
    "ObjectCreated:PutObject",
    "PostObject",
    "CopyObject",
    "GetObject",
    "DeleteObject",
    "ObjectRemoved:DeleteObjects",
    "ObjectCreatedGroup",
    "ObjectCreated:*",
    "ObjectRemovedGroup",
    "ObjectDownloaded:*",
    "ObjectReplication:ObjectCreated",
    "ObjectReplication:*",
    "FinishRestore",
    "ObjectRestore:*",
]


# --- the naive model ---------------------------------------------------------------------


def naive_matches(atom: MatchAtom, resource: str) -> bool:
    if atom.name is not None:
        hit = resource == atom.name
    else:
        hit = resource[: len(atom.prefix)] == atom.prefix and (
            not atom.suffix or resource[-len(atom.suffix) :] == atom.suffix
        )
    return hit if atom.match_state else not hit


def naive_covers(configured: str, emitted: str) -> bool:
    if configured == emitted or OSS_SHORT.get(configured) == emitted:
        return True
    if configured in OSS_GROUPS:
        return emitted.startswith(OSS_GROUPS[configured])
    return configured.endswith(":*") and emitted.startswith(configured[:-1])


@cache
def positive_mask(name: str | None, prefix: str, suffix: str) -> int:
    """Bit i set iff UNIVERSE[i] matches the (un-negated) atom."""
    atom = MatchAtom(name, prefix, suffix)
    bits = "".join("1" if naive_matches(atom, text) else "0" for text in reversed(UNIVERSE))
    return int(bits, 2)


def mask(atom: MatchAtom) -> int:
    hits = positive_mask(atom.name, atom.prefix, atom.suffix)
    return hits if atom.match_state else EVERYTHING ^ hits


def conjunction_mask(atoms: Iterable[MatchAtom]) -> int:
    result = EVERYTHING
    for atom in atoms:
        result &= mask(atom)
    return result


def rule_mask(match_rules: MatchRules) -> int:
    result = 0
    for conjunction in match_rules:
        result |= conjunction_mask(conjunction)
    return result


def emitted_covered(event_types: Sequence[str]) -> set[str]:
    return {e for e in EMITTED if any(naive_covers(t, e) for t in event_types)}


def brute_conflict(first: EventRule, second: EventRule) -> bool:
    if first.is_default or second.is_default or first.product != second.product:
        return False
    shared = emitted_covered(first.event_types) & emitted_covered(second.event_types)
    return bool(shared) and rule_mask(first.match_rules) & rule_mask(second.match_rules) != 0


def some(bits: int) -> str:
    return UNIVERSE[(bits & -bits).bit_length() - 1]


# --- strategies ----------------------------------------------------------------------------

texts = st.text(ALPHABET, max_size=MAX_TEXT)
name_atoms = st.builds(
    MatchAtom,
    name=st.text(ALPHABET, min_size=1, max_size=MAX_NAME),
    prefix=st.just(""),
    suffix=st.just(""),
    match_state=st.booleans(),
)
affix_atoms = st.builds(
    MatchAtom, name=st.none(), prefix=texts, suffix=texts, match_state=st.booleans()
)
atoms = st.one_of(affix_atoms, affix_atoms, name_atoms)
conjunctions = st.lists(atoms, min_size=1, max_size=2).map(tuple)
match_rules_st = st.lists(conjunctions, min_size=1, max_size=3).map(tuple)
event_types_st = st.lists(st.sampled_from(TYPE_POOL), min_size=1, max_size=3, unique=True)
ENDPOINTS = (RuleEndpoint("queue", "q"),)


def raw_rule(name: str, event_types: Sequence[str], match_rules: MatchRules) -> EventRule:
    """A rule built without validation: find_conflict is defined over any rules."""
    return EventRule("oss", name, tuple(event_types), match_rules, ENDPOINTS)


def atom(
    name: str | None = None, prefix: str = "", suffix: str = "", state: bool = True
) -> MatchAtom:
    return MatchAtom(name, prefix, suffix, state)


# --- satisfiable: tables ---------------------------------------------------------------


def test_universe_and_bound() -> None:
    assert len(UNIVERSE) == sum(4**n for n in range(BOUND + 1))
    assert max(map(len, UNIVERSE)) == BOUND


SATISFIABLE_TABLE = [
    ([], True),
    ([atom(prefix="photos/")], True),
    ([atom(suffix=".jpg")], True),
    ([atom(prefix="photos/", suffix=".jpg")], True),
    ([atom(name="movie/hello.avi")], True),
    ([atom(prefix="a/"), atom(prefix="a/b")], True),
    ([atom(prefix="a/"), atom(prefix="b/")], False),
    ([atom(suffix=".jpg"), atom(suffix=".png")], False),
    ([atom(suffix="g"), atom(suffix=".jpg")], True),
    ([atom(prefix="ab"), atom(suffix="bc")], True),  # "abc" overlaps them
    ([atom(name="a/x.jpg"), atom(prefix="a/"), atom(suffix=".jpg")], True),
    ([atom(name="a/x.jpg"), atom(prefix="b/")], False),
    ([atom(name="a/x"), atom(name="a/y")], False),
    ([atom(name="a/x"), atom(name="a/x")], True),
    ([atom(prefix="a/", state=False)], True),
    ([atom(state=False)], False),  # "not everything"
    ([atom(prefix="a/"), atom(prefix="a", state=False)], False),
    ([atom(prefix="a"), atom(prefix="a/", state=False)], True),
    ([atom(prefix="a/", suffix=".jpg"), atom(prefix="a", suffix="jpg", state=False)], False),
    ([atom(prefix="a/", suffix=".jpg"), atom(prefix="a/b", suffix=".jpg", state=False)], True),
    ([atom(name="a/x.jpg"), atom(suffix=".jpg", state=False)], False),
    ([atom(prefix="a/"), atom(name="a/", state=False), atom(name="a/x", state=False)], True),
]


def test_satisfiable_table() -> None:
    for conjunction, expected in SATISFIABLE_TABLE:
        witness = satisfiable(conjunction)
        assert (witness is not None) == expected, conjunction
        if witness is not None:
            assert all(naive_matches(a, witness) for a in conjunction), (conjunction, witness)


def test_witnesses_read_well() -> None:
    assert satisfiable([atom(prefix="photos/", suffix=".jpg")]) == "photos/x.jpg"
    assert satisfiable([atom(prefix="photos/")]) == "photos/x"
    assert satisfiable([atom(suffix=".jpg")]) == "x.jpg"
    assert satisfiable([atom(name="movie/hello.avi")]) == "movie/hello.avi"


def test_witness_falls_back_to_a_fresh_character() -> None:
    # Every filler the implementation likes is excluded by a negated atom, so only a
    # character foreign to all atoms can separate prefix and suffix.
    conjunction = [
        atom(prefix="a"),
        *(atom(prefix="a" + c, state=False) for c in "x0_~#-.zq9"),
        atom(name="a", state=False),
    ]
    witness = satisfiable(conjunction)
    assert witness is not None and witness[0] == "a" and len(witness) == 2
    assert all(naive_matches(a, witness) for a in conjunction)


def test_overlap_and_describe() -> None:
    assert overlap([atom(prefix="a/")], [atom(suffix=".jpg")]) == "a/x.jpg"
    assert overlap([atom(prefix="a/")], [atom(prefix="b/")]) is None
    assert describe([atom(prefix="a/", suffix=".jpg")]) == '{"Prefix":"a/","Suffix":".jpg"}'
    assert describe([atom(suffix=".jpg")]) == '{"Suffix":".jpg"}'
    assert describe([atom(prefix="")]) == '{"Prefix":""}'
    assert describe([atom(name="a/b"), atom(prefix="a/", state=False)]) == (
        '[{"Name":"a/b"},{"Prefix":"a/","MatchState":false}]'
    )


def test_match_atom_refuses_name_with_affixes() -> None:
    try:
        MatchAtom("a/b", "a/", "")
    except ValueError:
        return
    raise AssertionError("a name with a prefix was accepted")


# --- satisfiable: exhaustive pairs and random conjunctions vs brute force --------------

POOL_TEXTS = ["", "a", "b", "ab", "ba", "a/"]
POOL = [
    MatchAtom(None, prefix, suffix, state)
    for prefix in POOL_TEXTS
    for suffix in POOL_TEXTS
    for state in (True, False)
] + [
    MatchAtom(name, "", "", state) for name in ("a", "ab", "a/b", "aba") for state in (True, False)
]


def check_against_brute_force(conjunction: Sequence[MatchAtom]) -> bool:
    witness = satisfiable(conjunction)
    found = conjunction_mask(conjunction)
    assert (witness is None) == (found == 0), (conjunction, witness, found and some(found))
    if witness is not None:
        assert all(naive_matches(a, witness) for a in conjunction), (conjunction, witness)
    return witness is not None


def test_satisfiable_every_pair_of_pool_atoms() -> None:
    outcomes = [check_against_brute_force(pair) for pair in itertools.product(POOL, repeat=2)]
    assert len(outcomes) == len(POOL) ** 2
    assert any(outcomes) and not all(outcomes)


@settings(max_examples=600, deadline=None)
@given(st.lists(atoms, max_size=5))
def test_satisfiable_agrees_with_brute_force(conjunction: list[MatchAtom]) -> None:
    check_against_brute_force(conjunction)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(POOL), min_size=3, max_size=5))
def test_satisfiable_pool_conjunctions_agree_with_brute_force(
    conjunction: list[MatchAtom],
) -> None:
    check_against_brute_force(conjunction)


# --- shared event types ----------------------------------------------------------------

SHARED_TABLE = [
    (["PutObject"], ["PutObject"], ("PutObject",)),
    (["PutObject"], ["ObjectCreated:PutObject"], ("PutObject",)),
    (["ObjectCreatedGroup"], ["PutObject", "GetObject"], ("PutObject",)),
    (["ObjectCreated:*"], ["ObjectCreatedGroup"], ("ObjectCreatedGroup",)),
    (["ObjectCreatedGroup"], ["ObjectRemovedGroup"], ()),
    (["ObjectRemovedGroup"], ["AbortMultipartUpload"], ("AbortMultipartUpload",)),
    (["ObjectCreatedGroup"], ["ObjectReplication:ObjectCreated"], ()),
    (["ObjectRestore:*"], ["FinishRestore"], ("FinishRestore",)),
    (["PutObject", "PostObject"], ["ObjectCreatedGroup"], ("PutObject", "PostObject")),
]


def test_shared_event_types_table() -> None:
    for first, second, expected in SHARED_TABLE:
        a, b = raw_rule("a", first, ((atom(),),)), raw_rule("b", second, ((atom(),),))
        assert shared_event_types(a, b) == expected, (first, second)
        assert set(shared_event_types(b, a)) == set(expected)


def test_default_rule_shares_nothing_and_never_conflicts() -> None:
    default = EventRule(
        "oss",
        DEFAULT_RULE_NAME,
        ("Default",),
        ((MatchAtom(DEFAULT_RESOURCE),),),
        ENDPOINTS,
    )
    everything = raw_rule("all", ["ObjectCreatedGroup"], ((atom(),),))
    assert shared_event_types(default, everything) == ()
    assert find_conflict(default, [everything]) is None
    assert find_conflict(everything, [default]) is None


def test_other_products_and_the_rule_itself_never_conflict() -> None:
    rule = raw_rule("r", ["Deliver:SendFailed"], ((atom(),),))
    dm_rule = EventRule("dm", "r2", ("Deliver:SendFailed",), ((atom(),),), ENDPOINTS)
    assert find_conflict(dm_rule, [rule]) is None
    assert find_conflict(dm_rule, [dm_rule]) is None


# --- find_conflict: table and brute force ----------------------------------------------


def test_find_conflict_names_everything() -> None:
    existing = raw_rule(
        "photos", ["CopyObject", "PutObject"], ((atom(prefix="images/"),), (atom(name="a/b"),))
    )
    new = raw_rule("thumbs", ["ObjectCreatedGroup"], ((atom(suffix=".png"),),))
    conflict = find_conflict(new, [existing])
    assert conflict is not None
    assert conflict.existing_rule == "photos"
    assert conflict.new_description == (atom(suffix=".png"),)
    assert conflict.existing_description == (atom(prefix="images/"),)
    assert conflict.shared_event_types == ("CopyObject", "PutObject")
    assert conflict.witness == "images/x.png"
    message = conflict.message()
    for part in ("'photos'", '{"Suffix":".png"}', '{"Prefix":"images/"}', "'images/x.png'"):
        assert part in message
    assert "CopyObject, PutObject" in message
    error = conflict.error()
    assert error.code == "EventRuleConflict"
    assert error.details["ConflictRuleName"] == "photos"


def test_disjoint_objects_may_share_types_and_shared_objects_may_differ_in_types() -> None:
    images = raw_rule("images", ["CopyObject"], ((atom(prefix="images"),),))
    movies = raw_rule("movies", ["CopyObject"], ((atom(prefix="movies"),),))
    puts = raw_rule("puts", ["PutObject"], ((atom(prefix="images"),),))
    assert find_conflict(movies, [images]) is None
    assert find_conflict(puts, [images]) is None
    nested = raw_rule("nested", ["CopyObject"], ((atom(prefix="images/2024/"),),))
    assert find_conflict(nested, [movies, images]) is not None


@settings(max_examples=400, deadline=None)
@given(event_types_st, match_rules_st, event_types_st, match_rules_st)
def test_find_conflict_agrees_with_brute_force(
    types_a: list[str], rules_a: MatchRules, types_b: list[str], rules_b: MatchRules
) -> None:
    new, existing = raw_rule("new", types_a, rules_a), raw_rule("old", types_b, rules_b)
    conflict = find_conflict(new, [existing])
    assert (conflict is not None) == brute_conflict(new, existing)
    if conflict is None:
        return
    assert conflict.existing_rule == "old"
    assert conflict.new_description in rules_a
    assert conflict.existing_description in rules_b
    both = (*conflict.new_description, *conflict.existing_description)
    assert all(naive_matches(a, conflict.witness) for a in both)
    # The reported types stand for exactly the events both rules select.
    reported = emitted_covered(conflict.shared_event_types)
    assert reported == emitted_covered(types_a) & emitted_covered(types_b)


# --- admission through check_can_add never lets two rules overlap ---------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(event_types_st, match_rules_st), min_size=1, max_size=14))
def test_admitted_rules_never_overlap(candidates: list[tuple[list[str], MatchRules]]) -> None:
    admitted: list[EventRule] = []
    for number, (event_types, match_rules) in enumerate(candidates):
        try:
            rule = new_rule("oss", f"rule-{number}", event_types, match_rules, ENDPOINTS)
            check_can_add(rule, admitted)
        except ServiceError:
            continue
        admitted.append(rule)
    assert len(admitted) <= 10
    for rule in admitted:
        masks = [conjunction_mask(c) for c in rule.match_rules]
        assert all(masks), "a description that matches nothing was admitted"
        for one, other in itertools.combinations(masks, 2):
            assert one & other == 0, "overlapping descriptions within a rule"
    for first, second in itertools.combinations(admitted, 2):
        assert not brute_conflict(first, second), (first, second)


@settings(max_examples=300, deadline=None)
@given(match_rules_st)
def test_new_rule_refuses_exactly_the_overlapping_descriptions(match_rules: MatchRules) -> None:
    atoms_used = [a for c in match_rules for a in c]
    # Keep only refusals about overlap: OSS full names need a '/', and ≤ 5 atoms.
    names_ok = all(a.name is None or "/" in a.name for a in atoms_used)
    if not names_ok or len(atoms_used) > 5:
        return
    masks = [conjunction_mask(c) for c in match_rules]
    acceptable = all(masks) and all(a & b == 0 for a, b in itertools.combinations(masks, 2))
    try:
        new_rule("oss", "r", ["PutObject"], match_rules, ENDPOINTS)
    except ServiceError as error:
        assert error.code == "MatchRuleInvalid"
        assert not acceptable, error.message
        return
    assert acceptable
