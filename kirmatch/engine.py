"""The batch engine: every model of the registry over many pairs, computed once
per distinct input and broadcast with integer arrays.

How it stays exact and fast
---------------------------
* **People are prepared once per distinct typing.** Each distinct locus typing
  (a few hundred, however many people) is resolved once (rule 2), each distinct
  KIR typing reduced to its features once; every registry *fact* (a candidate
  set, DOMAIN.md §A.0) is interned to an integer code, so a person is a row of
  small integers. Facts combining loci (the rule-3 ligand facts) are computed
  per distinct combination of their inputs' codes.
* **Models are evaluated once per distinct combination of their inputs.** Each
  output column has a dense lookup table indexed by the codes of its model's
  input facts, filled lazily by :class:`kirmatch.registry.ModelEvaluator`
  (:func:`kirmatch.registry.evaluate_model`, which :func:`kirmatch.pair.assess_pair`
  uses, over all the new combinations of a chunk at once: the model function
  is called once per distinct combination of input *values*, and propagation
  (§A.0) is decided on the outcome codes in numpy; a test holds the two equal),
  and a pair's cell is one array gather. An unresolved input is simply
  a different fact code: there is no separate slow path.
* **Warnings are kept structured** (per-person templates with a ``{who}``
  placeholder, per-model unknown sets as bitmasks) and joined into text once
  per distinct combination, all of a chunk's at once (:class:`_WarningCells`).
* **The cyclic garbage collector is paused while the engine works**
  (:func:`collector_paused`): its caches are long-lived and hold hundreds of
  thousands of containers that every full collection would scan again (about
  a tenth of a low-resolution run's time); nothing it makes is cyclic garbage.

Results are Arrow dictionary arrays (one small vocabulary per column).
"""

from __future__ import annotations

import functools
import gc
import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kirmatch.dsa import NO_ANTIBODY_DATA, PairScreen
from kirmatch.errors import KirmatchError
from kirmatch.facts import WHO, compute_fact, kir_role_warnings, readings_warnings
from kirmatch.hla import CLASS_I_LOCI
from kirmatch.hlamatch import MATCH_LOCI, locus_readings
from kirmatch.kir import kir_features
from kirmatch.ligands import shared_resolver
from kirmatch.options import Options
from kirmatch.people import People
from kirmatch.pyard_backend import PyardBackend
from kirmatch.registry import (
    DSA_COLUMNS,
    FACTS,
    MODELS,
    PAIR_FACTS,
    PERSON_MODELS,
    TYPING_LOCI,
    Model,
    ModelEvaluator,
    cell,
    unknown_warnings,
)
from kirmatch.tables import ReferenceTables

__all__ = ["ROLES", "Engine", "EngineResult", "Vocab", "collector_paused"]

ROLES = ("recipient", "donor")
#: Row states: person index -1 = id not in the genotypes, -2 = empty id.
NOT_FOUND, EMPTY = -1, -2


#: Blocks of :func:`collector_paused` active in this process (any thread), and
#: the lock that guards the count and the collector's switch.
_PAUSES = [0]
_PAUSES_LOCK = threading.Lock()


@contextmanager
def collector_paused() -> Iterator[Callable[[], None]]:
    """Python's automatic cyclic garbage collection paused for the block.

    The engine's caches (typings, reading sets, candidate sets, warning texts)
    are long-lived and hold many containers; each automatic full collection
    scans them all again, for nothing: the engine makes no cyclic garbage. The
    block yields a function that collects the young generations (a run calls it
    between chunks, so cycles that are garbage by then, other threads' too,
    are still freed). The switch is the whole process's: blocks are counted
    (nested ones, and those of other threads), and the collector is turned back
    on when the last one is left, error or not. A collector that was already
    off when the first block began is left alone (the yielded function then
    does nothing); one turned off by other code during a block is on again
    after it.

    >>> import gc
    >>> with collector_paused() as collect_young:
    ...     gc.isenabled()
    False
    >>> gc.isenabled()
    True
    """
    entered = False
    try:
        with _PAUSES_LOCK:
            if _PAUSES[0] or gc.isenabled():
                gc.disable()
                _PAUSES[0] += 1
                entered = True
        yield _collect_young if entered else _no_collection
    finally:
        if entered:
            with _PAUSES_LOCK:
                _PAUSES[0] -= 1
                if not _PAUSES[0]:
                    gc.enable()


def _collect_young() -> None:
    gc.collect(1)


def _no_collection() -> None:
    pass


class Vocab:
    """Interned strings of one output column; code 0 is the empty cell."""

    __slots__ = ("_dictionary", "codes", "items")

    def __init__(self) -> None:
        self.items: list[str] = [""]
        self.codes: dict[str, int] = {"": 0}
        self._dictionary: pa.Array | None = None

    def code(self, text: str) -> int:
        c = self.codes.get(text)
        if c is None:
            c = len(self.items)
            self.items.append(text)
            self.codes[text] = c
        return c

    def array(self, codes: np.ndarray) -> pa.DictionaryArray:
        """The column as an Arrow dictionary array. Chunks share one dictionary
        until the vocabulary grows (a writer encodes each dictionary once)."""
        if self._dictionary is None or len(self._dictionary) != len(self.items):
            self._dictionary = pa.array(self.items, pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), self._dictionary)


class _Interner:
    """Candidate sets (or warning sets) to integer codes."""

    __slots__ = ("index", "items")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.index: dict[Any, int] = {}

    def code(self, item: Any) -> int:
        c = self.index.get(item)
        if c is None:
            c = len(self.items)
            self.items.append(item)
            self.index[item] = c
        return c


#: Most booleans (distinct combinations x warning texts) a chunk's warnings are
#: built with; above it they are sorted as (combination, text) pairs instead.
_DENSE_WARNINGS = 1 << 24

#: Most bytes (estimated) of built warnings cells kept for later chunks: each
#: distinct cell is built once while they fit; then they are dropped and built
#: again. A cell is estimated as its characters plus :data:`_CELL_BYTES` (the
#: Python string, its list slot and its entry in the text index), a lookup key
#: as :data:`_KEY_BYTES` (its tuple of integers and dictionary entry).
_HELD_WARNINGS = 1 << 28
_CELL_BYTES, _KEY_BYTES = 350, 200


class _WarningCells:
    """The warnings column (DOMAIN.md §A.17: a row's warnings, sorted and
    ``;``-joined; a ``;`` inside a warning becomes ``,``), built in numpy and Arrow.

    A row's warnings are its people's warning sets (:attr:`Engine.wsets`: templates
    with the role for ``{who}``) and each model's unknown-warning set
    (:attr:`Engine.usets`). Every distinct warning text has an id. An unknown
    set is a bitmask (a bit per distinct unknown warning), so a row's unknown
    warnings are the OR of its models' masks; rows with the same person sets
    and mask share a cell. A cell is a head and a tail: the tail is the mask's
    texts that sort after every person text of the combinations built (the many
    ``unknown(...)`` warnings), joined once per distinct tail; the head is the
    rest, each combination's text ids put in text order and deduplicated at
    once: as a row of booleans over the texts when the chunk's combinations
    times the texts are few enough (:data:`_DENSE_WARNINGS`; identical rows
    share a head), else by sorting (combination, rank of text) pairs; Arrow
    joins each head's texts, and a cell is its head and tail joined. A cell
    once built is kept for later chunks (up to :data:`_HELD_WARNINGS` bytes),
    so each is built once in a run.
    """

    __slots__ = ("_bits", "_cell_ids", "_cell_texts", "_cells", "_held", "_masked", "_masks",
                 "_order", "_people", "dense_limit", "held_limit", "texts", "usets", "wsets")

    def __init__(self, wsets: _Interner, usets: _Interner,
                 dense_limit: int = _DENSE_WARNINGS, held_limit: int = _HELD_WARNINGS) -> None:
        self.wsets, self.usets = wsets, usets
        self.dense_limit, self.held_limit = dense_limit, held_limit
        self._cells: dict[tuple[tuple[str, ...], int], dict[tuple[int, ...], int]] = {}
        self._cell_texts: list[str] = [""]      # cell id -> text
        self._cell_ids: dict[str, int] = {"": 0}
        self._held = 0                          # bytes of the cells and keys kept
        self.texts = _Interner()                # warning text -> id
        self._people: dict[str, dict[int, list[int]]] = {}   # role -> set code -> text ids
        self._bits = _Interner()                # text id of an unknown warning -> bit
        self._masks = np.zeros((1, 1), np.uint64)   # usets code -> mask words
        self._masked = 1                        # usets codes with a mask (0: empty)
        self._order: tuple[int, np.ndarray, pa.Array] | None = None   # texts sorted

    def _id(self, text: str) -> int:
        return self.texts.code(text.replace(";", ","))

    def _person(self, role: str, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The text ids of person warning sets ``codes`` with ``role`` for ``{who}``:
        (offsets, ids), the ``i``-th set's at ``ids[offsets[i]:offsets[i + 1]]``."""
        known = self._people.setdefault(role, {})
        lists = []
        for c in codes.tolist():
            got = known.get(c)
            if got is None:
                got = known[c] = [self._id(w.replace(WHO, role)) for w in self.wsets.items[c]]
            lists.append(got)
        offsets = np.zeros(len(lists) + 1, np.int64)
        np.cumsum([len(x) for x in lists], out=offsets[1:])
        return offsets, np.fromiter(itertools.chain.from_iterable(lists), np.int64,
                                    int(offsets[-1]))

    def _mask_table(self) -> np.ndarray:
        """Every unknown-warning set's mask (rows: set codes; columns: 64-bit words)."""
        items = self.usets.items
        if self._masked < len(items):
            new = [[self._bits.code(self._id(w)) for w in items[c]]
                   for c in range(self._masked, len(items))]
            words = max((len(self._bits.items) + 63) // 64, 1)
            table = np.zeros((len(items), words), np.uint64)
            table[:self._masked, :self._masks.shape[1]] = self._masks
            for c, bits in enumerate(new, start=self._masked):
                for b in bits:
                    table[c, b >> 6] |= np.uint64(1 << (b & 63))
            self._masks, self._masked = table, len(items)
        return self._masks

    def _sorted(self) -> tuple[np.ndarray, pa.Array]:
        """Each text id's rank in text order, and the texts in that order."""
        size = len(self.texts.items)
        if self._order is None or self._order[0] != size:
            items = self.texts.items
            order = sorted(range(size), key=items.__getitem__)
            rank = np.empty(size, np.int64)
            rank[order] = np.arange(size)
            self._order = (size, rank, pa.array([items[i] for i in order], pa.string()))
        return self._order[1], self._order[2]

    def _heads(self, count: int, group: np.ndarray, at: np.ndarray, size: int,
               texts: pa.Array) -> tuple[np.ndarray, pa.Array]:
        """Each of ``count`` combinations' texts (ranks ``at`` of combination
        ``group``, duplicates allowed) in text order and joined: a code per
        combination into the joined texts (combinations with the same texts
        share one; none joins as ``""``). As rows of booleans when few enough
        (:data:`_DENSE_WARNINGS`), else by sorting the pairs."""
        if count * size <= self.dense_limit:
            cells = np.zeros((count, size), bool)
            cells[group, at] = True
            same, rows = _distinct_rows(cells)     # identical rows share a code
        else:
            pairs = np.unique(group * size + at)     # by combination, then in text order
            offsets = np.zeros(count + 1, np.int64)
            np.cumsum(np.bincount(pairs // size, minlength=count), out=offsets[1:])
            joined = pc.binary_join(pa.LargeListArray.from_arrays(
                pa.array(offsets), texts.take(pa.array(pairs % size))), ";")
            encoded = joined.dictionary_encode()
            return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), \
                encoded.dictionary
        group, at = np.divmod(np.flatnonzero(rows), size)      # in text order
        offsets = np.zeros(len(rows) + 1, np.int64)
        np.cumsum(np.bincount(group, minlength=len(rows)), out=offsets[1:])
        return same, pc.binary_join(
            pa.LargeListArray.from_arrays(pa.array(offsets), texts.take(pa.array(at))), ";")

    def column(self, n: int, okr: np.ndarray, people: list[tuple[str, np.ndarray]],
               unknown: list[np.ndarray]) -> pa.DictionaryArray:
        """The warnings of ``n`` rows: rows ``okr`` have, per role, a person warning
        set code (``people``) and, per model, an unknown-set code (``unknown``);
        other rows are empty. The dictionary is ``""`` then the rows' cells in
        order of first appearance."""
        k = len(okr)
        if k == 0:
            return Vocab().array(np.zeros(n, np.int32))
        masks = self._mask_table()
        words = [np.zeros(k, np.uint64) for _ in range(masks.shape[1])]   # each row's mask
        columns = [np.ascontiguousarray(masks[:, w]) for w in range(masks.shape[1])]
        for u in unknown:
            if not u.any():
                continue
            nz = np.flatnonzero(u)
            at = u if len(nz) == k else u[nz]
            for word, column in zip(words, columns, strict=True):
                if len(nz) == k:
                    word |= column[at]
                else:
                    word[nz] |= column[at]
        # the distinct values of each mask word, then the distinct combinations
        coded = [pd.factorize(word, sort=False) for word in words]
        inv, rows = _factorize(*(c for _, c in people), *(c for c, _ in coded))
        distinct = np.array(rows, np.int64).reshape(len(rows), -1)
        sets = distinct[:, :len(people)]
        mask = np.stack([np.asarray(values, np.uint64)[distinct[:, len(people) + w]]
                         for w, (_, values) in enumerate(coded)], axis=1)
        # cells built for an earlier chunk are looked up, the others built
        roles = tuple(role for role, _ in people)
        known = self._built(roles, mask.shape[1])
        keys = list(zip(*(sets[:, j].tolist() for j in range(sets.shape[1])),
                        *(mask[:, w].tolist() for w in range(mask.shape[1])), strict=True))
        cell = [known.get(key, -1) for key in keys]
        new = [i for i, c in enumerate(cell) if c < 0]
        ids, store = self._cell_ids, self._cell_texts
        if new:
            for i, text in zip(new, self._build(roles, sets[new], mask[new]), strict=True):
                c = ids.get(text)
                if c is None:
                    c = ids[text] = len(store)
                    store.append(text)
                    self._held += len(text) + _CELL_BYTES
                cell[i] = known[keys[i]] = c
            self._held += len(new) * _KEY_BYTES
        # the chunk's dictionary: "" (cell 0) first, then in order of first appearance
        codes, used = pd.factorize(np.array([0, *cell], np.int64), sort=False)
        out = np.zeros(n, np.int32)
        out[okr] = codes[1:][inv]
        return pa.DictionaryArray.from_arrays(
            pa.array(out, pa.int32()), pa.array([store[c] for c in used.tolist()], pa.string()))

    def _built(self, roles: tuple[str, ...], words: int) -> dict[tuple[int, ...], int]:
        """The cells built so far for people with ``roles`` and masks of ``words``
        words: (set codes ..., mask words ...) -> cell id (an index into the
        texts; 0 is ``""``). All are dropped, texts too, when they hold more
        than :attr:`held_limit` bytes (memory stays bounded however many
        distinct cells a run has); the keys of shorter masks when masks gain a
        word (they are never looked up again)."""
        if self._held > self.held_limit:
            self._cells.clear()
            self._cell_texts = [""]
            self._cell_ids = {"": 0}
            self._held = 0
        for key in [k for k in self._cells if k[1] != words]:
            self._held -= len(self._cells.pop(key)) * _KEY_BYTES
        return self._cells.setdefault((roles, words), {})

    def _build(self, roles: tuple[str, ...], sets: np.ndarray, mask: np.ndarray) -> list[str]:
        """The cell of each combination: person set codes ``sets`` (a column per
        role of ``roles``) and unknown-warning mask ``mask`` (a row of words)."""
        count = len(sets)
        # every combination's text ids: its person sets' ...
        groups, ids = [], []
        for j, role in enumerate(roles):
            codes, where = np.unique(sets[:, j], return_inverse=True)
            offsets, flat = self._person(role, codes)
            sizes = (offsets[1:] - offsets[:-1])[where.ravel()]
            starts = np.repeat(offsets[:-1][where.ravel()] - np.cumsum(sizes) + sizes, sizes)
            groups.append(np.repeat(np.arange(count), sizes))
            ids.append(flat[starts + np.arange(int(sizes.sum()))])
        rank, texts = self._sorted()
        size = len(rank)
        # ... and its mask's. The mask's texts after every person text of these
        # combinations in text order (the "unknown(...)" warnings, mostly) end
        # every cell in the same order: they are joined once per distinct tail
        # and appended; only the rest (the head) is put in order per combination.
        last = max((int(rank[x].max()) for x in ids if len(x)), default=-1)
        bit_ids = np.asarray(self._bits.items, np.int64)
        in_tail = rank[bit_ids] > last
        bits = np.unpackbits(np.ascontiguousarray(mask).astype("<u8").view(np.uint8), axis=1,
                             bitorder="little")[:, :len(bit_ids)].astype(bool)
        group, bit = np.nonzero(bits[:, ~in_tail])
        groups.append(group)
        ids.append(bit_ids[~in_tail][bit])
        tail_ids = bit_ids[in_tail]
        tail_ids = tail_ids[np.argsort(rank[tail_ids])]          # in text order
        tails = bits[:, in_tail][:, np.argsort(rank[bit_ids[in_tail]])]
        tail_code, tail_rows = _distinct_rows(tails)
        items = self.texts.items
        tail_texts = [";".join(items[i] for i in tail_ids[row].tolist()) for row in tail_rows]
        with_tail = tail_rows.any(axis=1)[tail_code].tolist()
        group = np.concatenate(groups)
        head_code, head_texts = self._heads(count, group, rank[np.concatenate(ids)], size,
                                            texts)
        heads = head_texts.to_pylist()
        # a head with texts, even an empty one, is joined to its tail with ";"
        with_head = (np.bincount(group, minlength=count) > 0).tolist()
        return [(heads[h] + ";" + tail_texts[t] if tl else heads[h]) if hd else
                (tail_texts[t] if tl else "")
                for h, t, hd, tl in zip(head_code.tolist(), tail_code.tolist(), with_head,
                                        with_tail, strict=True)]


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes for the distinct rows of a boolean matrix, in order of first
    appearance, and those rows."""
    packed = np.ascontiguousarray(np.packbits(rows, axis=1)) if rows.shape[1] else \
        np.zeros((len(rows), 1), np.uint8)
    _, first, same = np.unique(packed.view(np.dtype((np.void, packed.shape[1]))).ravel(),
                               return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")       # sorted code -> first-appearance code
    code = np.empty(len(first), np.int64)
    code[order] = np.arange(len(first))
    return code[same.ravel()], rows[first[order]]


def _factorize(*arrays: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """Codes for the distinct rows of ``arrays`` (same length, non-negative ints)
    and those rows, in order of first appearance."""
    if len(arrays) == 1:
        codes, uniques = pd.factorize(arrays[0], sort=False)
        return codes.astype(np.int64), [(u,) for u in np.asarray(uniques).tolist()]
    widths = [max(int(a.max()).bit_length(), 1) if len(a) else 1 for a in arrays]
    if sum(widths) <= 62:
        key = np.zeros(len(arrays[0]), np.int64)
        for a, w in zip(arrays, widths, strict=True):
            key = (key << w) | a.astype(np.int64)
        codes, uniques = pd.factorize(key, sort=False)
        rest = np.asarray(uniques, np.int64)
        parts = []
        for w in reversed(widths):
            parts.append((rest & ((1 << w) - 1)).tolist())
            rest = rest >> w
        return codes.astype(np.int64), list(zip(*reversed(parts), strict=True))
    stacked = np.stack([a.astype(np.int64) for a in arrays], axis=1)
    view = np.ascontiguousarray(stacked).view(
        np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1]))).ravel()
    codes, uniques = pd.factorize(view, sort=False)
    rows = [tuple(int(x) for x in np.frombuffer(u, dtype=np.int64)) for u in uniques]
    return codes.astype(np.int64), rows


@dataclass(frozen=True, slots=True)
class EngineResult:
    """Computed columns of one chunk of pairs (Arrow dictionary arrays)."""

    columns: dict[str, pa.Array]
    status_error: np.ndarray
    error_codes: dict[str, int]
    dsa: PairScreen | None = None

    @property
    def n_error(self) -> int:
        return int(self.status_error.sum())


class _Table:
    """A lazily filled lookup table of one column: cell code per combination of
    its model's input fact codes (-1 = not computed yet)."""

    __slots__ = ("cells",)

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.cells = np.full(shape, -1, np.int32)


_F = TypeVar("_F", bound=Callable[..., Any])


def _paused(method: _F) -> _F:
    """``method`` run with the garbage collector paused (:func:`collector_paused`);
    for plain methods only (a generator's body would run after the block)."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with collector_paused():
            return method(*args, **kwargs)
    return cast(_F, run)


class Engine:
    """Assess pairs of one cohort with every model of the registry.

    Parameters
    ----------
    people:
        The cohort (:func:`kirmatch.people.load_people` and friends).
    options, tables, pyard:
        As for :func:`kirmatch.pair.assess_pair`.
    """

    def __init__(self, people: People, options: Options, tables: ReferenceTables,
                 pyard: PyardBackend | None = None) -> None:
        self.people = people
        self.options = options
        self.tables = tables
        self.pyard = pyard
        self.resolver = shared_resolver(tables, options, pyard)
        self.n = len(people)
        # one vocabulary per column name (a person column shares its pair namesake's)
        self.cells: dict[str, Vocab] = {c: Vocab() for m in (*MODELS, *PERSON_MODELS)
                                        for c in m.columns}
        self.reasons = _Interner()
        self.reasons.code("")
        self.usets = _Interner()          # frozensets of unknown warnings, code 0 = empty
        self.usets.code(frozenset())
        self.wsets = _Interner()          # frozensets of warning templates
        self.wsets.code(frozenset())
        self.fact_codes: dict[str, np.ndarray] = {}
        self.fact_vocab: dict[str, _Interner] = {}
        self.person_error: dict[int, KirmatchError] = dict(people.errors)
        self.role_wset: dict[str, np.ndarray] = {}
        self._tables: dict[tuple[str, int], _Table] = {}
        self._pair_tables: dict[str, np.ndarray] = {}
        self.pair_vocab: dict[str, _Interner] = {}
        self._sparse_cache: dict[str, dict[tuple[int, ...], tuple[int, ...]]] = {}
        self._munk: dict[str, np.ndarray] = {}
        self._warnings = _WarningCells(self.wsets, self.usets)
        self._evaluators: dict[str, ModelEvaluator] = {}
        # per model: its (value, reason) per column -> cell codes and warning-set code
        self._decided: dict[str, dict[tuple[Any, ...], tuple[int, ...]]] = {}
        self._ids: dict[str, Sequence[str] | pa.Array] = {}
        self._prepared = False

    # -- people -------------------------------------------------------------
    def _used(self, locus: str) -> int:
        """Distinct typings in use at ``locus`` (untyped not counted)."""
        codes = self.people.locus_codes.get(locus)
        if codes is None or len(codes) == 0:
            return 0
        return int(np.count_nonzero(np.unique(np.asarray(codes, np.int64))))

    def preparation(self) -> tuple[int, str]:
        """The steps :meth:`prepare` reports (one per distinct typing it resolves)
        and what it prepares, in words (``"20,000 people (812 distinct HLA
        typings, 9 KIR)"``)."""
        hla = sum(self._used(loc) for loc in dict.fromkeys((*CLASS_I_LOCI, *MATCH_LOCI)))
        kir = len(self.people.kir_vocab) - 1
        return hla + kir, (f"{self.n:,} people ({hla:,} distinct HLA typings, {kir:,} KIR)")

    @_paused
    def prepare(self, tick: Callable[[int], None] | None = None) -> None:
        """Resolve every distinct typing once and compute the people's fact codes;
        ``tick(done)`` after each distinct typing resolved (see :meth:`preparation`)."""
        if self._prepared:
            return
        self._prepared = True
        people, n = self.people, self.n
        done = 0

        def step() -> None:
            nonlocal done
            done += 1
            if tick is not None:
                tick(done)
        err = np.zeros(n, bool)
        locus_w: dict[str, np.ndarray] = {}
        sources: dict[str, list[Any]] = {}     # dep name -> per-vocab value
        per_vocab_codes: dict[str, np.ndarray] = {}  # dep name -> person -> vocab code
        for loc in CLASS_I_LOCI:
            codes = np.asarray(people.locus_codes.get(loc, np.zeros(n, np.int64)), np.int64)
            vocab = people.locus_vocab.get(loc, [None])
            res: list[Any] = []
            wcodes = np.zeros(len(vocab), np.int32)
            bad: dict[int, KirmatchError] = {}
            used = np.zeros(len(vocab), bool)
            used[np.unique(codes)] = True
            for v, lt in enumerate(vocab):
                if not used[v]:  # e.g. nobody is untyped at this locus
                    res.append(None)
                    continue
                if v:
                    step()
                try:
                    r = self.resolver.resolve_locus(loc, lt, WHO)
                except KirmatchError as exc:
                    bad[v] = exc
                    res.append(None)
                    continue
                res.append(r)
                wcodes[v] = self.wsets.code(frozenset(r.warnings))
            if bad:
                for i in np.flatnonzero(np.isin(codes, list(bad))).tolist():
                    if i not in self.person_error:
                        self.person_error[i] = self._located(i, loc, bad[int(codes[i])])
                    err[i] = True
            sources[f"locus:{loc}"] = [r.cand if r is not None else None for r in res]
            per_vocab_codes[f"locus:{loc}"] = codes
            locus_w[loc] = wcodes[codes]
        # Rule-16 readings of every locus compared at ARS identity (class I too).
        for loc in MATCH_LOCI:
            codes = np.asarray(people.locus_codes.get(loc, np.zeros(n, np.int64)), np.int64)
            vocab = people.locus_vocab.get(loc, [None])
            used = np.zeros(len(vocab), bool)
            used[np.unique(codes)] = True
            values: list[Any] = []
            wcodes = np.zeros(len(vocab), np.int32)
            bad = {}
            for v, lt in enumerate(vocab):
                if not used[v]:
                    values.append(None)
                    continue
                if v and loc not in CLASS_I_LOCI:   # class I was counted by its ligands
                    step()
                try:
                    r = locus_readings(lt, loc, self.tables, self.options, self.pyard, WHO)
                except KirmatchError as exc:
                    bad[v] = exc
                    values.append(None)
                    continue
                values.append(r)
                if loc not in CLASS_I_LOCI:
                    wcodes[v] = self.wsets.code(frozenset(readings_warnings(loc, r)))
            if bad:
                for i in np.flatnonzero(np.isin(codes, list(bad))).tolist():
                    if i not in self.person_error:
                        self.person_error[i] = self._located(i, loc, bad[int(codes[i])])
                    err[i] = True
            sources[f"hla:{loc}"] = values
            per_vocab_codes[f"hla:{loc}"] = codes
            if loc not in CLASS_I_LOCI:
                locus_w[loc] = wcodes[codes]
        # Loci read as typed (typing:<locus>): a 1-tuple per typing that resolved.
        for loc in TYPING_LOCI:
            vocab = people.locus_vocab.get(loc, [None])
            sources[f"typing:{loc}"] = [None if r is None else (lt,) for lt, r in
                                        zip(vocab, sources[f"locus:{loc}"], strict=True)]
            per_vocab_codes[f"typing:{loc}"] = per_vocab_codes[f"locus:{loc}"]
        kcodes = np.asarray(people.kir_codes if len(people.kir_codes) else [0] * n, np.int64)
        kfeat = []
        for v, k in enumerate(people.kir_vocab):
            kfeat.append(kir_features(k, self.tables, WHO))
            if v:
                step()
        sources["kir"] = kfeat
        per_vocab_codes["kir"] = kcodes
        for i in self.person_error:
            err[i] = True
        self.error_mask = err
        # Facts, in dependency order.
        for name in _fact_order():
            fact = FACTS[name]
            interner = _Interner()
            self.fact_vocab[name] = interner
            if len(fact.deps) == 1 and fact.deps[0] in sources:
                dep = fact.deps[0]
                table = np.zeros(len(sources[dep]), np.int32)
                for v, value in enumerate(sources[dep]):
                    if value is None:
                        continue
                    table[v] = interner.code(compute_fact(name, {dep: value}, self.options,
                                                          self.tables, self.pyard))
                self.fact_codes[name] = table[per_vocab_codes[dep]]
                continue
            dep_codes = [self.fact_codes[d] for d in fact.deps]
            inv, rows = _factorize(*dep_codes)
            table = np.zeros(len(rows), np.int32)
            for u, combo in enumerate(rows):
                if any(c >= len(self.fact_vocab[d].items) for d, c in zip(fact.deps, combo,
                                                                         strict=True)):
                    continue  # only people with errors lack a value here
                deps = {d: self.fact_vocab[d].items[c] for d, c in zip(fact.deps, combo,
                                                                     strict=True)}
                table[u] = interner.code(compute_fact(name, deps, self.options, self.tables,
                                                      self.pyard))
            self.fact_codes[name] = table[inv]
        # Person warnings per role: HLA loci + the role's KIR warnings.
        for role in ROLES:
            kw = np.zeros(len(kfeat), np.int32)
            for v, kf in enumerate(kfeat):
                kw[v] = self.wsets.code(frozenset(kir_role_warnings(kf.warnings, role, v != 0)))
            parts = [*locus_w.values(), kw[kcodes]]
            inv, rows = _factorize(*parts)
            table = np.zeros(len(rows), np.int32)
            for u, combo in enumerate(rows):
                merged: frozenset[str] = frozenset().union(*(self.wsets.items[c] for c in combo))
                table[u] = self.wsets.code(merged)
            self.role_wset[role] = table[inv]

    def facts_of(self, name: str, persons: np.ndarray) -> list[Any]:
        """Fact ``name`` (a candidate set) of each person of ``persons`` (indices)."""
        self.prepare()
        items = self.fact_vocab[name].items
        return [items[c] for c in self.fact_codes[name][persons].tolist()]

    def _located(self, i: int, locus: str, exc: KirmatchError) -> KirmatchError:
        lay = self.people.layout
        column = None
        if lay is not None:
            column = lay.hla_gl or lay.hla_loci.get(locus) or \
                (lay.hla_slots.get(locus, (None,))[0])
        return exc.located(row=self.people.rows[i], column=column, source=self.people.source)

    # -- pair facts -----------------------------------------------------------
    def _pair_codes(self, name: str, sub: dict[str, np.ndarray]) -> np.ndarray:
        """Pair fact ``name`` as codes (in ``self.pair_vocab[name]``) per row."""
        pf = PAIR_FACTS[name]
        r = self.fact_codes[pf.fact][sub["recipient"]]
        d = self.fact_codes[pf.fact][sub["donor"]]
        vocab = self.fact_vocab[pf.fact]
        table = self._pair_tables.get(name)
        if table is None:
            size = max(len(vocab.items), 1)
            table = self._pair_tables[name] = np.full((size, size), -1, np.int32)
            self.pair_vocab[name] = _Interner()
        out = table[r, d]
        todo = out < 0
        if todo.any():
            interner = self.pair_vocab[name]
            size = np.int64(table.shape[1])
            new = np.unique(r[todo].astype(np.int64) * size + d[todo])
            rcs, dcs = (new // size).tolist(), (new % size).tolist()
            items = vocab.items
            rv, dv = [items[c] for c in rcs], [items[c] for c in dcs]
            got = pf.many(rv, dv) if pf.many is not None else \
                [pf.fn(x, y) for x, y in zip(rv, dv, strict=True)]
            table[rcs, dcs] = [interner.code(v) for v in got]
            out = table[r, d]
        return out

    def _input_codes(self, m: Model, sub: dict[str, np.ndarray],
                     gathered: dict[tuple[str, str], np.ndarray]) -> tuple[np.ndarray, ...]:
        """The codes of each input of ``m`` per row (``gathered`` keeps them for
        the other models of the chunk)."""
        out = []
        for role, f in m.inputs:
            got = gathered.get((role, f))
            if got is None:
                got = gathered[role, f] = self._pair_codes(f, sub) if role == "pair" else \
                    self.fact_codes[f][sub[role]]
            out.append(got)
        return tuple(out)

    def _sparse(self, m: Model, gather: tuple[np.ndarray, ...]
                ) -> tuple[list[np.ndarray], np.ndarray]:
        """Cell codes of every column of ``m`` and unknown-set codes, per row, for a
        model whose inputs include pair facts (their vocabularies grow as pairs are
        seen, so results are kept per distinct combination, not in dense tables)."""
        cache = self._sparse_cache.setdefault(m.name, {})
        inv, rows = _factorize(*gather) if gather[0].size else (np.zeros(0, np.int64), [])
        local = np.zeros((len(rows), len(m.columns) + 1), np.int32)
        todo = []
        for u, combo in enumerate(rows):
            hit = cache.get(combo)
            if hit is None:
                todo.append(u)
            else:
                local[u] = hit
        if todo:
            combos = [rows[u] for u in todo]
            for u, combo, codes in zip(todo, combos, self._evaluate(m, combos), strict=True):
                local[u] = cache[combo] = codes
        return [local[inv, k] for k in range(len(m.columns))], local[inv, -1]

    def _evaluate(self, m: Model, combos: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
        """Cell codes of each column of ``m`` for each combination of its inputs'
        codes, then the code of its set of unknown and value warnings."""
        evaluator = self._evaluators.get(m.name)
        if evaluator is None:
            evaluator = self._evaluators[m.name] = ModelEvaluator(m, self.options)
        items = [(self.pair_vocab[f] if role == "pair" else self.fact_vocab[f]).items
                 for role, f in m.inputs]
        known = self._decided.setdefault(m.name, {})
        results = []
        for decided in evaluator.evaluate_many(
                [tuple(map(list.__getitem__, items, combo)) for combo in combos]):
            key = tuple((type(v), v, reason) for v, reason in decided)   # 1 is not True
            hit = known.get(key)
            if hit is not None:
                results.append(hit)
                continue
            out = []
            warns: set[str] = set()
            for col, (value, reason) in zip(m.columns, decided, strict=True):
                if value is None:
                    out.append(0)
                    warns.update(unknown_warnings(col, reason or "ambiguous_typing", m))
                else:
                    out.append(self.cells[col].code(cell(col, value)))
                    w = m.value_warnings.get(col, {}).get(value)
                    if w is not None:
                        warns.add(w)
            out.append(self.usets.code(frozenset(warns)))
            hit = known[key] = tuple(out)
            results.append(hit)
        return results

    # -- models ----------------------------------------------------------------
    def _table(self, m: Model, k: int) -> _Table:
        key = (m.name, k)
        t = self._tables.get(key)
        if t is None:
            shape = tuple(max(len(self.fact_vocab[f].items), 1) for _, f in m.inputs)
            t = _Table(shape)
            self._tables[key] = t
        return t

    def _unknown_table(self, m: Model) -> np.ndarray:
        """The model's unknown-warning set code per input combination (0 = none)."""
        t = self._munk.get(m.name)
        if t is None:
            t = np.zeros(self._table(m, 0).cells.shape, np.int32)
            self._munk[m.name] = t
        return t

    def _fill(self, m: Model, idx: tuple[np.ndarray, ...]) -> None:
        """Evaluate the missing entries of every column table of ``m`` at ``idx``."""
        first = self._table(m, 0)
        missing = first.cells[idx] < 0
        if not missing.any():
            return
        munk = self._unknown_table(m)
        _, rows = _factorize(*(i[missing] for i in idx))
        for combo, got in zip(rows, self._evaluate(m, rows), strict=True):
            for k in range(len(m.columns)):
                self._table(m, k).cells[combo] = got[k]
            munk[combo] = got[-1]

    # -- pairs -----------------------------------------------------------------
    @_paused
    def assess(self, recipients: np.ndarray, donors: np.ndarray, *,
               ids: dict[str, Sequence[str] | pa.Array] | None = None,
               row_errors: dict[int, str] | None = None,
               dsa: PairScreen | None = None) -> EngineResult:
        """Every model column for pairs given as person indices (``-1`` = id not in
        the genotypes, ``-2`` = empty id). ``ids`` holds each role's id text per row
        (for messages); ``row_errors`` are rows that could not be read (their
        message becomes the row's error); ``dsa`` the rows' antibody screen
        (:meth:`kirmatch.dsa.PanelScreen.screen_pairs`; ``None`` = no antibody
        data: the DSA columns are unknown)."""
        self.prepare()
        self._ids = ids or {}
        n = len(recipients)
        idx = {"recipient": np.asarray(recipients, np.int64),
               "donor": np.asarray(donors, np.int64)}
        ok = (idx["recipient"] >= 0) & (idx["donor"] >= 0)
        for role in ROLES:
            v = np.where(idx[role] >= 0, idx[role], 0)
            ok &= ~self.error_mask[v] if self.n else np.zeros(n, bool)
        row_errors = dict(row_errors or {})
        if dsa is not None:
            for j, exc in dsa.errors.items():
                row_errors.setdefault(j, exc.as_cell().replace("\n", " "))
        if row_errors:
            ok[list(row_errors)] = False
        okr = np.flatnonzero(ok)
        sub = {role: idx[role][okr] for role in ROLES}
        codes: dict[str, np.ndarray] = {}
        # Unknown warnings: each model's set code per row, joined into the cell at the end.
        unknown: list[np.ndarray] = []
        gathered: dict[tuple[str, str], np.ndarray] = {}
        every = len(okr) == n       # no error row: the columns need no scatter
        for m in MODELS:
            gather = self._input_codes(m, sub, gathered)
            if any(role == "pair" for role, _ in m.inputs):
                cols, u = self._sparse(m, gather)
            else:
                self._fill(m, gather)
                cols = [self._table(m, k).cells[gather] for k in range(len(m.columns))]
                u = self._unknown_table(m)[gather]
            for col, got in zip(m.columns, cols, strict=True):
                if every:
                    codes[col] = got
                    continue
                full = np.zeros(n, np.int32)
                full[okr] = got
                codes[col] = full
            unknown.append(u)
        # DSA (rule 13): the screen's cells and warning sets, or no antibody data.
        if dsa is None:
            nodata = frozenset(w for col, reason in NO_ANTIBODY_DATA.unknown().items()
                               for w in unknown_warnings(col, reason))
            dsa_u = np.full(len(okr), self.usets.code(nodata), np.int32)
        else:
            local_u = np.array([self.usets.code(frozenset(w)) for w in dsa.warnings],
                               np.int32)
            dsa_u = local_u[np.asarray(dsa.codes)[okr]]
        unknown.append(dsa_u)
        warnings = self._warnings.column(
            n, okr, [("recipient", self.role_wset["recipient"][sub["recipient"]]),
                     ("donor", self.role_wset["donor"][sub["donor"]])], unknown)
        # Errors.
        err_vocab = Vocab()
        ecodes = np.zeros(n, np.int32)
        counts: dict[str, int] = {}
        for j in np.flatnonzero(~ok).tolist():
            msg = (row_errors or {}).get(j) or self._error_text(idx["recipient"][j],
                                                                idx["donor"][j], j)
            code = msg.split(":", 1)[0]
            counts[code] = counts.get(code, 0) + 1
            ecodes[j] = err_vocab.code(msg)
        columns: dict[str, pa.Array] = {
            "status": pa.DictionaryArray.from_arrays(
                pa.array(np.where(ok, 0, 1), pa.int32()), pa.array(["ok", "error"])),
            "error": err_vocab.array(ecodes),
            "warnings": warnings,
        }
        for m in MODELS:
            for col in m.columns:
                columns[col] = self.cells[col].array(codes[col])
        okmask = pa.array(ok)
        for col in DSA_COLUMNS:
            if dsa is None:
                columns[col] = Vocab().array(np.zeros(n, np.int32))
            else:
                # error rows get empty cells: index 0 ("") of a dictionary column
                # (the tiers), an empty string in a plain one (MFI, hit lists)
                got = dsa.columns[col]
                if isinstance(got, pa.DictionaryArray):
                    idx = np.asarray(got.indices.to_numpy(zero_copy_only=False), np.int32)
                    columns[col] = pa.DictionaryArray.from_arrays(
                        pa.array(np.where(ok, idx, 0)), got.dictionary)
                else:
                    columns[col] = pc.if_else(okmask, got, pa.scalar("", pa.string()))
        return EngineResult(columns, ~ok, counts, dsa)

    # -- persons (rule 18) ------------------------------------------------------
    @_paused
    def assess_persons(self, persons: np.ndarray) -> EngineResult:
        """Every column of the per-person table (:data:`kirmatch.registry.PERSON_MODELS`)
        for people given by index: the same facts and lookup tables as the pair
        models, each person's warnings with ``person`` as the role (all of its HLA
        and KIR warnings), and a person that cannot be read as an error row."""
        self.prepare()
        idx = np.asarray(persons, np.int64)
        n = len(idx)
        ok = ~self.error_mask[idx] if n else np.zeros(0, bool)
        okr = np.flatnonzero(ok)
        sub = idx[okr]
        columns: dict[str, pa.Array] = {}
        unknown: list[np.ndarray] = []
        for m in PERSON_MODELS:
            gather = tuple(self.fact_codes[f][sub] for _, f in m.inputs)
            self._fill(m, gather)
            for k, col in enumerate(m.columns):
                full = np.zeros(n, np.int32)
                full[okr] = self._table(m, k).cells[gather]
                columns[col] = self.cells[col].array(full)
            unknown.append(self._unknown_table(m)[gather])
        # the person's own warnings are the donor role's (every HLA and KIR warning)
        warnings = self._warnings.column(n, okr, [("person", self.role_wset["donor"][sub])],
                                         unknown)
        err_vocab = Vocab()
        ecodes = np.zeros(n, np.int32)
        counts: dict[str, int] = {}
        for j in np.flatnonzero(~ok).tolist():
            msg = self.person_message("person", int(idx[j]), j)
            code = msg.split(":", 1)[0]
            counts[code] = counts.get(code, 0) + 1
            ecodes[j] = err_vocab.code(msg)
        head = {"status": pa.DictionaryArray.from_arrays(
                    pa.array(np.where(ok, 0, 1), pa.int32()), pa.array(["ok", "error"])),
                "error": err_vocab.array(ecodes), "warnings": warnings}
        return EngineResult({**head, **columns}, ~ok, counts)

    # -- errors ---------------------------------------------------------------
    _ids: dict[str, Sequence[str] | pa.Array]

    def _error_text(self, ri: int, di: int, row: int) -> str:
        msgs = []
        for role, i in (("recipient", int(ri)), ("donor", int(di))):
            m = self.person_message(role, i, row)
            if m:
                msgs.append(m)
        return "; ".join(msgs)

    def person_message(self, role: str, i: int, row: int) -> str:
        """Why person ``i`` in ``role`` cannot be assessed (``""`` if it can)."""
        if i == EMPTY:
            return f"input_parse_error: {role}_id is empty"
        if i == NOT_FOUND:
            texts = self._ids.get(role)
            pid = "?" if texts is None else texts[row]
            if isinstance(pid, pa.Scalar):
                pid = pid.as_py() or ""
            return (f"person_not_found: {role} {pid.strip()!r} has no record in the "
                    f"genotypes file{self.people.missing_hint()}")
        exc = self.person_error.get(i)
        if exc is None:
            return ""
        pid = self.people.ids[i]
        where = []
        if exc.row is not None:
            where.append(f"genotypes row {exc.row}")
        if exc.column is not None:
            where.append(f"column {exc.column!r}")
        loc = f" ({', '.join(where)})" if where else ""
        text = exc.reason if exc.position is None else f"{exc.reason} (char {exc.position})"
        return f"{exc.code}: {role} {pid!r}{loc}: {text}".replace("\n", " ")


def _fact_order() -> list[str]:
    """Every fact, dependencies first."""
    out: list[str] = []

    def visit(name: str) -> None:
        if name in out:
            return
        for d in FACTS[name].deps:
            if d in FACTS:
                visit(d)
        out.append(name)

    for name in FACTS:
        visit(name)
    return out
