"""Propagation over DKMS-style KIR typings never reports a value that some
resolution of the typing contradicts (DOMAIN.md §A.0), and reports one wherever
all resolutions agree (Hypothesis).

A *resolution* replaces every doubt in a typing by one definite reading:
one genotype alternative (``|``, ``NEG`` = absent, ``NA`` = either), one allele
per copy (``/``), and an allele of definite class for a copy whose allele is
not known (``POS``, ``NEW``, a withdrawn name) or not classified (KIR3DL1*095,
*016 are outside the class table). The oracle computes the features of every
resolution, each a fully determined typing, and compares them with the
features of the original typing.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kirmatch.kir import kir_features, parse_kir_genotype
from kirmatch.propagation import evaluate
from kirmatch.scores import kir3dl1_hlab
from kirmatch.tables import load_reference_tables

TABLES = load_reference_tables()
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

#: Definite stand-ins for an unknown allele: one allele of every class or call.
STAND_INS = {
    "3DL1": ("001", "005", "004"),  # H, L, N (DOMAIN.md §C.7)
    "2DL1": ("003", "004", "037", "032N"),  # R245, C245, other (His245), null (§C.6)
    "2DS4": ("001", "003"),  # full length, deletion (KIR2DS4_VARIANTS)
    "2DS4N": ("003",),  # a copy of the deletion variant: a deletion allele
}
TOKENS = {
    "3DL1": ["001", "005", "004", "095", "016", "NEW", "POS"],
    "3DS1": ["013", "POS"],
    "2DL1": ["003", "004", "037", "032N", "NEW", "POS"],
    "2DS4": ["001", "011", "003", "008", "NEW", "POS"],
    "2DS4N": ["003", "006", "010", "008", "POS"],
}
DEFINITE = {"3DL1": {"001", "005", "004"}, "2DL1": {"003", "004", "037", "032N"},
            "2DS4": {"001", "011", "003"}, "2DS4N": {"003", "006", "010"}}
B_CLASSES = ("Bw4-80I", "Bw4-80T", "Bw6")


@st.composite
def value(draw, gene: str) -> str:
    """A DKMS value: NEG, NA, or 1-2 genotype alternatives (maybe |NEG)."""
    kind = draw(st.sampled_from(["alleles", "alleles", "NEG", "NA", "POS"]))
    if kind != "alleles":
        return kind
    alts = []
    for _ in range(draw(st.integers(1, 2))):
        copies = ["/".join(draw(st.lists(st.sampled_from(TOKENS[gene]), min_size=1,
                                         max_size=2, unique=True)))
                  for _ in range(draw(st.integers(1, 2)))]
        alts.append("+".join(copies))
    if draw(st.booleans()):
        alts.append("NEG")
    return "|".join(alts)


def _copy_readings(gene: str, copy: str) -> set[str]:
    out: set[str] = set()
    for token in copy.split("/"):
        out |= {token} if token in DEFINITE[gene] else set(STAND_INS[gene])
    return out


def readings(gene: str, text: str) -> set[str]:
    """Every definite value (``NEG`` or a genotype of definite alleles) ``text`` may mean."""
    if text == "NA":
        return readings(gene, "NEG") | readings(gene, "POS")
    if text == "POS":
        return {"+".join(c) for n in (1, 2)
                for c in itertools.combinations_with_replacement(STAND_INS[gene], n)}
    out: set[str] = set()
    for alt in text.split("|"):
        if alt == "NEG":
            out.add("NEG")
            continue
        per_copy = [sorted(_copy_readings(gene, c)) for c in alt.split("+")]
        out |= {"+".join(combo) for combo in itertools.product(*per_copy)}
    return out


def _check(typing: str, resolutions: list[str], column) -> None:
    """``column(features) -> Cand``: the reported value agrees with every resolution,
    and a value is reported when they all agree on one.

    A definite typing may still have no value (KIR2DL1*037 is His245): ``None``,
    counted here as the value ``"?"``.
    """
    got, _ = evaluate(lambda v: v, column(kir_features(parse_kir_genotype(typing, TABLES),
                                                       TABLES)))
    seen = set()
    for r in resolutions:
        cand = column(kir_features(parse_kir_genotype(r, TABLES), TABLES))
        assert len(cand.values) == 1, (typing, r, cand)  # a resolution is definite
        seen.add("?" if None in cand.values else cand.value)
    if got is not None:
        assert seen == {got}, (typing, got, seen)
    else:
        assert len(seen) > 1 or seen == {"?"}, (typing, seen)


@SETTINGS
@given(value("3DL1"), st.sampled_from(["NEG", "POS", "NA", "013", "013|NEG"]))
def test_kir3dl1_class_and_hlab(l1: str, s1: str) -> None:
    typing = f"3DL1={l1};3DS1={s1}"
    resolutions = [f"3DL1={a};3DS1={b}" for a in readings("3DL1", l1)
                   for b in ({"NEG", "013"} if s1 in ("NA", "013|NEG") else
                             {"013"} if s1 == "POS" else {s1})]
    _check(typing, resolutions, lambda f: f.kir3dl1_class)
    _check(typing, resolutions, lambda f: f.kir3dl1_functional)
    for b in B_CLASSES:
        _check(typing, resolutions,
               lambda f, b=b: f.kir3dl1_class.map(lambda c: kir3dl1_hlab(c, b)))


@SETTINGS
@given(value("2DL1"))
def test_kir2dl1_245(v: str) -> None:
    _check(f"2DL1={v}", [f"2DL1={r}" for r in readings("2DL1", v)], lambda f: f.kir2dl1_245)


@SETTINGS
@given(value("2DS4"), value("2DS4N"))
def test_kir2ds4_full_length(plain: str, deletion: str) -> None:
    typing = f"2DS4={plain};2DS4N={deletion}"
    resolutions = [f"2DS4={a};2DS4N={b}" for a in readings("2DS4", plain)
                   for b in readings("2DS4N", deletion)]
    _check(typing, resolutions, lambda f: f.kir2ds4_full_length)
    _check(typing, resolutions, lambda f: f.present["KIR2DS4"])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_evaluate_all_names_the_input_that_makes_an_output_vary(data: st.DataObject) -> None:
    """§A.0: an output that varies is unknown with the reason of the first
    input (missing inputs first) whose own variation changes it, checked here
    against the definition itself: fix every other input, vary this one."""
    from kirmatch.propagation import Cand, Unknown, evaluate_all

    n_in = data.draw(st.integers(1, 4))
    cands = tuple(Cand(frozenset(data.draw(st.sets(st.integers(0, 4), min_size=1,
                                                   max_size=3))),
                       f"reason{i}", data.draw(st.booleans())) for i in range(n_in))
    # random functions of the inputs, each output reading only some of them
    combos = list(itertools.product(*(sorted(c.values) for c in cands)))
    reads = [data.draw(st.sets(st.integers(0, n_in - 1))) for _ in range(3)]
    tables = [{tuple(c[i] for i in sorted(r)): data.draw(st.integers(0, 2)) for c in combos}
              for r in reads]
    unknown_at = data.draw(st.sampled_from([None, *combos]))

    def fn(*values: int) -> tuple[int, ...] | Unknown:
        if values == unknown_at:
            return Unknown("rule")
        return tuple(t[tuple(values[i] for i in sorted(r))]
                     for t, r in zip(tables, reads, strict=True))

    got = evaluate_all(fn, 3, *cands)
    order = sorted(range(n_in), key=lambda i: not cands[i].missing)
    for k in range(3):
        outs = {combo: (fn(*combo) if isinstance(fn(*combo), Unknown) else fn(*combo)[k])
                for combo in combos}
        seen = set(outs.values())
        if len(seen) == 1:
            value = next(iter(seen))
            assert got[k] == ((None, "rule") if isinstance(value, Unknown) else (value, None))
            continue
        culprit = next(i for i in order if any(
            len({outs[c] for c in combos if c[:i] + c[i + 1:] == rest[:i] + rest[i + 1:]}) > 1
            for rest in combos))
        assert got[k] == (None, cands[culprit].reason)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_tabulated_equals_evaluate_all(data: st.DataObject) -> None:
    """The engine evaluates a model over many input combinations at once
    (``Tabulated``: the function once per distinct combination of values,
    agreement and the varying input read from outcome codes in numpy); every
    result must be :func:`evaluate_all`'s, across calls that share its table:
    unknowable inputs, outputs that are ``None`` or :class:`Unknown`, missing
    inputs, several varying inputs."""
    from kirmatch.propagation import Cand, Tabulated, Unknown, evaluate_all

    n_in = data.draw(st.integers(1, 3))
    value = st.one_of(st.integers(0, 4), st.just(None)) if data.draw(st.booleans()) \
        else st.integers(0, 4)
    cand = st.builds(lambda vals, reason, missing: Cand(frozenset(vals), reason, missing),
                     st.sets(value, min_size=1, max_size=3),
                     st.sampled_from(["ambiguous_typing", "hla_untyped", "gene_level_kir"]),
                     st.booleans())
    table = data.draw(st.dictionaries(st.tuples(*[st.integers(0, 4)] * n_in),
                                      st.one_of(st.tuples(st.integers(0, 2), st.integers(0, 1)),
                                                st.just("unknown"), st.just("none"))))

    def fn(*values: int) -> tuple[Any, ...] | Unknown:
        got = table.get(values, (sum(values) % 3, values[0] % 2))
        if got == "unknown":
            return Unknown("rule")
        if got == "none":
            return (None, values[-1] % 2)
        return got

    tab = Tabulated(fn, 2)
    for _ in range(data.draw(st.integers(1, 3))):        # the table is kept between calls
        combos = data.draw(st.lists(st.tuples(*[cand] * n_in), min_size=1, max_size=6))
        assert tab.evaluate_many(combos) == [evaluate_all(fn, 2, *c) for c in combos]


def test_tabulated_outcome_none_takes_the_first_reason() -> None:
    """§A.0 via ``Tabulated``: an output that is ``None`` for some combinations
    is unknown with the reason of the first varying input (as evaluate_all
    decides it), even when only a later input makes it ``None``."""
    from kirmatch.propagation import Cand, Tabulated, evaluate_all

    def fn(x: int, y: int) -> tuple[Any, ...]:
        return (None if y == 0 else 1, x + y)

    x = Cand(frozenset({0, 1}), "reason_x")
    y = Cand(frozenset({0, 1}), "reason_y")
    got = Tabulated(fn, 2).evaluate_many([(x, y)])
    assert got == [evaluate_all(fn, 2, x, y)] == [[(None, "reason_x"), (None, "reason_x")]]


def test_tabulated_keeps_types_batches_and_no_inputs(monkeypatch: Any) -> None:
    """``Tabulated`` keeps values that are equal but typed differently apart
    (``True`` is written "true", ``1`` is "1"), across calls, as evaluate_all
    sees each combination on its own; splits a large call into batches; and
    hands a combination without inputs to evaluate_all."""
    import kirmatch.propagation as prop
    from kirmatch.propagation import Cand, Tabulated, evaluate_all

    def fn(x: Any) -> tuple[Any, ...]:
        return (True if x == "a" else 1, x)

    combos = [(Cand.of("a"),), (Cand.of("b"),), (Cand.of(1),), (Cand.of(True),),
              (Cand(frozenset({"a", "b"}), "r"),), (Cand(frozenset({1, 2}), "r"),)]
    want = [evaluate_all(fn, 2, *c) for c in combos]
    got = Tabulated(fn, 2).evaluate_many(combos)
    assert got == want      # (True == 1, so the types are checked apart)
    assert [type(d[0][0]) for d in got[:2]] == [type(d[0][0]) for d in want[:2]] == [bool, int]
    assert [type(d[1][0]) for d in got[2:4]] == [int, bool]
    monkeypatch.setattr(prop, "_BATCH_ENTRIES", 2)      # a batch per one or two entries
    assert Tabulated(fn, 2).evaluate_many(combos) == want
    assert Tabulated(lambda: (1,), 1).evaluate_many([()]) == [evaluate_all(lambda: (1,), 1)]
