"""One exception tree for kirmatch, rooted at :class:`KirmatchError`.

Every exception carries the offending value (``raw``) and, where known, where it
was found (``position`` in a string, ``row`` and ``column`` in a file), and puts
them in its message so that a user can find and fix the input.

>>> err = HLAParseError("C*07:0x", "field 2 must be digits", position=6)
>>> str(err)
"cannot parse 'C*07:0x': field 2 must be digits (char 6)"
>>> isinstance(err, ValueError) and isinstance(err, KirmatchError)
True
"""

from __future__ import annotations

__all__ = [
    "ERROR_CODES",
    "AmbiguityError",
    "EnvironmentFault",
    "HLAParseError",
    "InputSchemaError",
    "KIRParseError",
    "KirmatchError",
    "ParseError",
    "PyardUnavailableError",
    "ReferenceTableError",
    "UnknownAlleleError",
    "UnknownAntigenError",
    "UsageError",
]


#: The codes of an ``error`` cell (``code: message``) and what each means; every
#: ``code`` of the exception tree is here (``tests/test_docs.py`` checks it).
ERROR_CODES: dict[str, str] = {
    "input_parse_error": "a value or a row could not be read; the message names it",
    "unknown_allele": "a well-formed allele or antigen that the pinned release does not have",
    "person_not_found": "a recipient_id or donor_id with no row in the genotypes table",
    "duplicate_person": "a sample_id with conflicting records in the genotypes table",
    "reference_data_error": "a reference table or the py-ard database could not be used",
    "environment_error": "the system refused: disk full, no permission, read-only file system",
}


class KirmatchError(Exception):
    """Root of every error kirmatch raises on purpose.

    ``code`` is the machine-readable error code of DOMAIN.md §A.17 used in the
    ``error`` output column (``code: message``).
    """

    code = "input_parse_error"

    def __init__(
        self,
        message: str,
        *,
        raw: str | None = None,
        position: int | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.raw = raw
        self.position = position
        self.row = row
        self.column = column
        self.source: str | None = None
        self.reason = message
        super().__init__(self._render(message))

    def _render(self, message: str) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        text = message if self.source is None else f"{self.source}: {message}"
        if self.position is not None:
            text = f"{text} (char {self.position})"
        if where:
            text = f"{text} [{', '.join(where)}]"
        return text

    def located(self, *, row: int | None = None, column: str | None = None,
                source: str | None = None) -> KirmatchError:
        """Return a copy of this error that also names the row, column and/or file."""
        new = self.__class__.__new__(self.__class__)
        new.__dict__.update(self.__dict__)
        if source is not None:
            new.source = source
        if row is not None:
            new.row = row
        if column is not None:
            new.column = column
        Exception.__init__(new, new._render(new.reason))
        return new

    def as_cell(self) -> str:
        """Render as the ``error`` output cell: ``code: message``."""
        return f"{self.code}: {self}"

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take other constructor arguments than ``args`` holds: rebuild
        # from the attributes, so that errors survive pickling (Dask workers, the
        # per-person errors of a shipped cohort).
        return (_restore, (self.__class__, self.args, dict(self.__dict__)))


def _restore(cls: type[KirmatchError], args: tuple[object, ...],
             state: dict[str, object]) -> KirmatchError:
    new = cls.__new__(cls)
    new.args = args
    new.__dict__.update(state)
    return new


class ParseError(KirmatchError, ValueError):
    """A typing string or input value cannot be parsed."""

    code = "input_parse_error"

    def __init__(self, raw: str, reason: str, **kwargs: object) -> None:
        super().__init__(f"cannot parse {raw!r}: {reason}", raw=raw, **kwargs)  # type: ignore[arg-type]
        self.reason = f"cannot parse {raw!r}: {reason}"
        self.detail = reason


class HLAParseError(ParseError):
    """An HLA typing (allele name, GL string, serology) cannot be parsed."""


class KIRParseError(ParseError):
    """A KIR typing (gene list, allele, POS/NEG value) cannot be parsed."""


class UnknownAlleleError(KirmatchError, ValueError):
    """A well-formed allele name that is absent from the pinned release."""

    code = "unknown_allele"

    def __init__(self, allele: str, release: str, **kwargs: object) -> None:
        msg = (
            f"unknown allele {allele!r}: not in {release}; alleles named after that "
            "release need newer reference tables (rebuild them with "
            "reference_tables/build/build_tables.py from a newer release)"
        )
        super().__init__(msg, raw=allele, **kwargs)  # type: ignore[arg-type]
        self.release = release


class UnknownAntigenError(UnknownAlleleError):
    """A well-formed antibody specificity naming no antigen of the pinned release."""

    def __init__(self, antigen: str, release: str, **kwargs: object) -> None:
        KirmatchError.__init__(
            self, f"unknown antigen {antigen!r}: not an HLA antigen, public epitope (Bw4, "
            f"Bw6) or allele-group name (Cw12) of {release}", raw=antigen,
            **kwargs)  # type: ignore[arg-type]
        self.release = release


class AmbiguityError(KirmatchError, ValueError):
    """Raised only where a caller explicitly asked for an unambiguous value."""

    code = "input_parse_error"


class ReferenceTableError(KirmatchError):
    """A shipped reference table is missing, malformed or fails its checksum."""

    code = "reference_data_error"


class InputSchemaError(KirmatchError, ValueError):
    """An input file is empty, undecodable or lacks a required column."""

    code = "input_parse_error"


class PyardUnavailableError(KirmatchError):
    """py-ard (or its database, or the MAC table) is needed but not available.

    The message always says how to make it available (``kirmatch data build``).
    """

    code = "reference_data_error"


class UsageError(KirmatchError, ValueError):
    """An invalid option value or combination (CLI exit code 2)."""

    code = "input_parse_error"


class EnvironmentFault(KirmatchError):
    """The system refused a file operation: disk full, no permission, read-only
    file system, a folder that cannot be created (CLI exit code 3).

    Not a fault of the input: the same run succeeds once the disk, folder or
    permission is fixed. The message names the path and the operating
    system's reason; ``path`` and ``errno`` carry them for programs.

    >>> import errno
    >>> err = EnvironmentFault("cannot write 'out.csv': No space left on device",
    ...                        path="out.csv", errno=errno.ENOSPC)
    >>> err.code, err.path, err.errno == errno.ENOSPC
    ('environment_error', 'out.csv', True)
    """

    code = "environment_error"

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None,
                 **kwargs: object) -> None:
        super().__init__(message, raw=path, **kwargs)  # type: ignore[arg-type]
        self.path = path
        self.errno = errno
