"""Candidate sets and propagation (DOMAIN.md §A.0).

An unresolved input is held as the set of values it could take. Each output is
evaluated over every combination of candidates; if all combinations agree the
value is reported, otherwise it is unknown, with the reason of the input that
made it vary. This never guesses.

>>> a = Cand.of(1)
>>> b = Cand(frozenset({2, 3}), "ambiguous_typing")
>>> evaluate(lambda x, y: x + y > 2, a, b)
(True, None)
>>> evaluate(lambda x, y: x + y, a, b)
(None, 'ambiguous_typing')
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["Cand", "Tabulated", "Unknown", "evaluate", "evaluate_all", "image"]

T = TypeVar("T", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Cand(Generic[T]):
    """The values an input could take, and the reason code when there are several.

    A value of ``None`` inside ``values`` means "cannot be known at all" (for
    example an allele missing from a class table); any combination that meets
    it makes the output unknown with this candidate's ``reason``.
    """

    values: frozenset[T]
    reason: str | None = None
    #: The input is missing (an untyped locus, say) and ``values`` stand for
    #: everything it could be: when it and another input both make an output
    #: vary, the missing one's reason is given (typing it is what settles it).
    missing: bool = False

    @classmethod
    def of(cls, value: T) -> Cand[T]:
        return cls(frozenset((value,)), None)

    @classmethod
    def any_of(cls, values: Iterable[T], reason: str | None, *, missing: bool = False
               ) -> Cand[T]:
        vals = frozenset(values)
        varies = len(vals) != 1 or None in vals
        return cls(vals, reason if varies else None, missing and varies)

    @property
    def known(self) -> bool:
        return len(self.values) == 1 and None not in self.values

    @property
    def value(self) -> T:
        if not self.known:
            raise ValueError("candidate set is not a single known value")
        return next(iter(self.values))

    def map(self, fn: Callable[[T], Any]) -> Cand[Any]:
        return Cand.any_of((fn(v) if v is not None else None for v in self.values), self.reason,
                           missing=self.missing)


_MAX_COMBOS = 200_000


@dataclass(frozen=True, slots=True)
class Unknown:
    """Returned by a model when a definite rule makes its value unknown
    (e.g. ``cen_unclassifiable``), as opposed to unresolved input."""

    reason: str


def evaluate(fn: Callable[..., Any], *cands: Cand[Any]) -> tuple[Any, str | None]:
    """Evaluate ``fn`` over every combination of candidate values.

    Returns ``(value, None)`` when all combinations agree on a non-``None``
    value, else ``(None, reason)`` where ``reason`` belongs to the first input
    (in argument order) which holds an unknowable ``None``, or else to the first
    input whose variation changes the output.
    """
    return evaluate_all(lambda *a: (fn(*a),), 1, *cands)[0]


def evaluate_all(fn: Callable[..., Any], n: int, *cands: Cand[Any]
                 ) -> list[tuple[Any, str | None]]:
    """:func:`evaluate` of ``n`` outputs at once: ``fn`` returns a tuple of ``n``
    values (or one :class:`Unknown` for all of them) and is called once per
    combination; each output is decided as :func:`evaluate` decides it.

    >>> b = Cand(frozenset({2, 3}), "ambiguous_typing")
    >>> evaluate_all(lambda x, y: (x + y > 2, x + y), 2, Cand.of(1), b)
    [(True, None), (None, 'ambiguous_typing')]
    """
    for c in cands:
        if None in c.values:
            return [(None, c.reason)] * n
    if all(len(c.values) == 1 for c in cands):
        out = fn(*(next(iter(c.values)) for c in cands))
        return [_decided(out if isinstance(out, Unknown) else out[k], cands)
                for k in range(n)]
    total = 1
    for c in cands:
        total *= len(c.values)
    if total > _MAX_COMBOS:  # pragma: no cover - guard against pathological inputs
        return [(None, _first_reason(cands))] * n
    # every combination once, in product order (so an output's values form a
    # grid with one axis per input, used to find which input made it vary)
    outs = [fn(*combo) for combo in product(*(tuple(c.values) for c in cands))]
    decided: list[tuple[Any, str | None]] = []
    varying = [c for c in cands if len(c.values) > 1]
    if outs and not any(isinstance(out, Unknown) for out in outs):
        cols = [list(col) for col in zip(*outs)]     # one list per output, at once
    else:
        cols = [[out if isinstance(out, Unknown) else out[k] for out in outs]
                for k in range(n)]
    for k in range(n):
        col = cols[k]
        seen = set(col)
        if None in seen:
            decided.append((None, _first_reason(cands)))
        elif len(seen) == 1:
            decided.append(_decided(next(iter(seen)), cands))
        elif len(varying) == 1:     # the only input that varies is what made it vary
            decided.append((None, varying[0].reason))
        else:
            decided.append((None, _varying_reason(cands, col)))
    return decided


#: Most entries (combinations of values) :meth:`Tabulated.evaluate_many` forms
#: at once; more are done in several batches (memory stays bounded).
_BATCH_ENTRIES = 1 << 20


class Tabulated:
    """:func:`evaluate_all` of one function over many combinations of candidate
    sets at once, the function called once per distinct combination of values.

    Each input position interns its values (*atoms*, by type and value: ``1``
    and ``True`` stay apart); a combination of candidate sets becomes the
    product of their atoms, formed for many combinations together in numpy,
    and each distinct product entry is looked up in a table of the function's
    outcomes (filled on first use). Whether a column's outcomes agree, hold
    ``None``, or vary (and along which input) is then read from the outcome
    codes, group by group; an agreed value is the one of the group's first
    entry, as :func:`evaluate_all` keeps it. The results are exactly
    :func:`evaluate_all`'s; a combination the table cannot hold (no inputs, no
    values, too many, too many atoms to code) is passed to it.

    >>> t = Tabulated(lambda x, y: (x + y > 2, x + y), 2)
    >>> b = Cand(frozenset({2, 3}), "ambiguous_typing")
    >>> t.evaluate_many([(Cand.of(1), b), (Cand.of(0), Cand.of(2))])
    [[(True, None), (None, 'ambiguous_typing')], [(False, None), (2, None)]]
    """

    __slots__ = ("_arrays", "_atoms", "_coded", "_codes", "_outcomes", "_table", "_values",
                 "fn", "n")

    def __init__(self, fn: Callable[..., Any], n: int) -> None:
        self.fn, self.n = fn, n
        self._atoms: list[dict[tuple[type, Any], int]] = []   # per input: value -> atom
        self._values: list[list[Any]] = []              # per input: atom code -> value
        # per input and candidate set: the set and its atoms, in value order
        self._arrays: dict[tuple[int, Cand[Any]], tuple[Cand[Any], Any]] = {}
        self._codes: list[dict[Any, int]] = [{} for _ in range(n)]   # per column
        self._outcomes: list[list[Any]] = [[] for _ in range(n)]
        # atoms -> outcome codes and the function's own result
        self._table: dict[tuple[int, ...], tuple[tuple[int, ...], Any]] = {}
        # the same as sorted coded keys and their outcome codes, per arity
        self._coded: dict[int, tuple[Any, Any]] = {}

    def _atoms_of(self, i: int, c: Cand[Any]) -> Any:
        key = (i, c)
        hit = self._arrays.get(key)
        if hit is None or hit[0] is not c:     # an equal set may hold 1 where c holds True
            while len(self._atoms) <= i:
                self._atoms.append({})
                self._values.append([])
            atoms, values = self._atoms[i], self._values[i]
            codes = []
            for v in tuple(c.values):       # the order evaluate_all's product uses
                a = atoms.get((type(v), v))
                if a is None:
                    a = atoms[type(v), v] = len(values)
                    values.append(v)
                codes.append(a)
            hit = self._arrays[key] = (c, np.array(codes, np.int64))
        return hit[1]

    def _outcome(self, atoms: tuple[int, ...]) -> tuple[int, ...]:
        got = self._table.get(atoms)
        if got is None:
            out = self.fn(*(self._values[i][a] for i, a in enumerate(atoms)))
            codes = []
            for k in range(self.n):
                v = out if isinstance(out, Unknown) else out[k]
                c = self._codes[k].get(v)    # equal outcomes share a code, as a set would
                if c is None:
                    c = self._codes[k][v] = len(self._outcomes[k])
                    self._outcomes[k].append(v)
                codes.append(c)
            got = self._table[atoms] = (tuple(codes), out)
        return got[0]

    def _lookup(self, keys: Any, k: int, width: int) -> Any:
        """The outcome codes of each coded atom combination in ``keys`` (sorted,
        distinct), from the coded table kept per arity; new ones evaluated."""
        known, codes = self._coded.get(k, (np.zeros(0, np.int64),
                                           np.zeros((0, self.n), np.int64)))
        at = np.searchsorted(known, keys)
        found = at < len(known)
        found[found] = known[at[found]] == keys[found]
        out = np.empty((len(keys), self.n), np.int64)
        out[found] = codes[at[found]]
        new = keys[~found]
        if len(new):
            fresh = np.array([self._outcome(_atoms(x, k, width)) for x in new.tolist()],
                             np.int64).reshape(len(new), self.n)
            out[~found] = fresh
            merged = np.concatenate([known, new])
            order = np.argsort(merged, kind="stable")
            self._coded[k] = (merged[order], np.concatenate([codes, fresh])[order])
        return out

    def evaluate_many(self, combos: Sequence[tuple[Cand[Any], ...]]
                      ) -> list[list[tuple[Any, str | None]]]:
        """``[evaluate_all(fn, n, *c) for c in combos]``, computed together."""
        results: list[list[tuple[Any, str | None]] | None] = [None] * len(combos)
        todo: list[int] = []
        entries = 0
        for j, cands in enumerate(combos):
            unknowable = next((c for c in cands if None in c.values), None)
            if unknowable is not None:
                results[j] = [(None, unknowable.reason)] * self.n
                continue
            total = 1
            for c in cands:
                total *= len(c.values)
            if total == 0 or total > _MAX_COMBOS or not 0 < len(cands) <= 6:
                results[j] = evaluate_all(self.fn, self.n, *cands)
                continue
            if todo and (entries + total > _BATCH_ENTRIES
                         or len(cands) != len(combos[todo[0]])):
                self._batch(combos, todo, results)
                todo, entries = [], 0
            todo.append(j)
            entries += total
        if todo:
            self._batch(combos, todo, results)
        return results  # type: ignore[return-value]

    def _batch(self, combos: Sequence[tuple[Cand[Any], ...]], todo: list[int],
               results: list[Any]) -> None:
        """Fill ``results[j]`` for each ``j`` of ``todo`` (same number of inputs)."""
        k = len(combos[todo[0]])
        width = 62 // k
        arrays = [[self._atoms_of(i, combos[j][i]) for j in todo] for i in range(k)]
        if any(len(v) >= (1 << width) for v in self._values[:k]):   # pragma: no cover
            for j in todo:
                results[j] = evaluate_all(self.fn, self.n, *combos[j])
            return
        sizes = np.array([[len(a) for a in per] for per in arrays], np.int64).T   # (groups, k)
        totals = sizes.prod(axis=1)
        starts = np.concatenate([[0], np.cumsum(totals)[:-1]])
        group = np.repeat(np.arange(len(todo)), totals)
        within = np.arange(int(totals.sum()), dtype=np.int64) - starts[group]
        key = np.zeros(len(within), np.int64)
        stride = np.ones(len(todo), np.int64)
        for i in reversed(range(k)):            # product order: the last input fastest
            flat = np.concatenate(arrays[i])
            offsets = np.concatenate([[0], np.cumsum(sizes[:, i])[:-1]])
            digit = (within // stride[group]) % sizes[group, i]
            key |= flat[offsets[group] + digit] << (width * i)
            stride *= sizes[:, i]
        distinct, inverse = np.unique(key, return_inverse=True)
        table = self._lookup(distinct, k, width)
        grid = table[inverse]                                       # (entries, columns)
        low = np.minimum.reduceat(grid, starts, axis=0)
        high = np.maximum.reduceat(grid, starts, axis=0)
        nones = np.array([self._codes[c].get(None, -1) for c in range(self.n)], np.int64)
        has_none = np.maximum.reduceat(grid == nones, starts, axis=0)
        firsts = key[starts].tolist()           # each group's first entry
        for g, j in enumerate(todo):
            cands = combos[j]
            decided: list[tuple[Any, str | None]] = []
            first = None
            for c in range(self.n):
                if has_none[g, c]:
                    decided.append((None, _first_reason(cands)))
                elif low[g, c] == high[g, c]:   # the first entry's value, as a set keeps it
                    if first is None:
                        first = self._table[_atoms(firsts[g], k, width)][1]
                    decided.append(_decided(first if isinstance(first, Unknown) else first[c],
                                            cands))
                else:
                    varying = [x for x in cands if len(x.values) > 1]
                    if len(varying) == 1:
                        decided.append((None, varying[0].reason))
                    else:
                        cells = grid[starts[g]: starts[g] + totals[g], c]   # product order
                        decided.append((None, _varying_reason(cands, cells.tolist())))
            results[j] = decided


def _atoms(key: int, k: int, width: int) -> tuple[int, ...]:
    """The atom codes packed in ``key`` (``width`` bits each, input 0 lowest)."""
    mask = (1 << width) - 1
    return tuple((key >> (width * i)) & mask for i in range(k))


def _decided(value: Any, cands: tuple[Cand[Any], ...]) -> tuple[Any, str | None]:
    """One output that every combination agrees on."""
    if isinstance(value, Unknown):
        return None, value.reason
    return (value, None) if value is not None else (None, _first_reason(cands))


def _varying_reason(cands: tuple[Cand[Any], ...], col: list[Any]) -> str | None:
    """The reason of the first input (in order, missing inputs first) whose
    variation changes the result. ``col`` holds the result of every combination
    of the inputs' values in :func:`itertools.product` order, so it is a grid
    with one axis per input: an input changes the result when, the other inputs
    fixed, a slice of the grid along its axis differs from the first one."""
    sizes = [len(c.values) for c in cands]
    multi = sorted((i for i, c in enumerate(cands) if len(c.values) > 1),
                   key=lambda i: not cands[i].missing)
    for i in multi:
        stride = 1
        for size in sizes[i + 1:]:
            stride *= size
        span = stride * sizes[i]
        for start in range(0, len(col), span):   # the inputs before i fixed
            first = col[start:start + stride]
            for k in range(stride, span, stride):
                if col[start + k:start + k + stride] != first:
                    return cands[i].reason
    return cands[multi[0]].reason if multi else None  # pragma: no cover


def _first_reason(cands: Iterable[Cand[Any]]) -> str | None:
    cands = sorted(cands, key=lambda c: not c.missing)
    for c in cands:
        if c.reason and (len(c.values) > 1 or None in c.values):
            return c.reason
    for c in cands:
        if c.reason:
            return c.reason
    return None


def image(fn: Callable[..., Any], *cands: Cand[Any]) -> Cand[Any]:
    """The set of values ``fn`` takes over all combinations, as a new candidate set.

    Its reason is that of the first input whose variation changes the value
    (so a derived candidate keeps the right reason for later propagation).

    >>> image(lambda x, y: x or y, Cand.of(True), Cand(frozenset({True, False}), "r")).values
    frozenset({True})
    """
    if all(len(c.values) == 1 for c in cands):
        args = [next(iter(c.values)) for c in cands]
        if any(a is None for a in args):
            return Cand(frozenset({None}), _first_reason(cands))
        return Cand.of(fn(*args))
    results: dict[tuple[Any, ...], Any] = {}
    for combo in product(*(c.values for c in cands)):
        results[combo] = None if any(v is None for v in combo) else fn(*combo)
    values = frozenset(results.values())
    if len(values) == 1 and None not in values:
        return Cand(values, None)
    multi = sorted((i for i, c in enumerate(cands) if len(c.values) > 1 or None in c.values),
                   key=lambda i: not cands[i].missing)
    for i in multi:
        if None in cands[i].values:
            return Cand(values, cands[i].reason)
        groups: dict[tuple[Any, ...], set[Any]] = {}
        for combo, r in results.items():
            key = combo[:i] + combo[i + 1:]
            groups.setdefault(key, set()).add(r)
            if len(groups[key]) > 1:
                return Cand(values, cands[i].reason)
    return Cand(values, _first_reason(cands))
