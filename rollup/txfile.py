"""Reading transaction files (JSON lines): validated whole before anything executes.

A file with any schema error is refused as a whole; the error lists every bad line with the
field and the reason, so a user can fix the file in one pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from verifier.wire import Transaction

TRANSACTION_ADAPTER: TypeAdapter = TypeAdapter(Transaction)
MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based line number in the file
    field: str  # dotted path of the field, "" for the whole line
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


class TransactionFileError(Exception):
    """The file cannot be executed: unreadable, empty, or with invalid lines (all listed)."""

    def __init__(self, path: str, errors: list[LineError], total_lines: int = 0):
        self.path = path
        self.errors = errors
        if len(errors) == 1 and errors[0].line == 0:
            super().__init__(f"{path}: {errors[0].message}")
            return
        shown = "\n".join(f"  {e}" for e in errors[:MAX_LISTED_ERRORS])
        more = f"\n  ... and {len(errors) - MAX_LISTED_ERRORS} more" if len(errors) > MAX_LISTED_ERRORS else ""
        # lines, not errors: one line can break several fields
        n_lines = len({e.line for e in errors})
        errors_note = f" ({len(errors)} errors)" if len(errors) > n_lines else ""
        super().__init__(
            f"{path}: {n_lines} invalid line(s) of {total_lines}{errors_note}; nothing was executed\n{shown}{more}"
        )


def _field_path(loc: tuple) -> str:
    # pydantic's tagged-union location starts with the tag ("withdraw", "amount"): drop the tag
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in TRANSACTION_TYPE_TAGS:
        parts = parts[1:]
    return ".".join(parts)


TRANSACTION_TYPE_TAGS = frozenset(
    member.model_fields["type"].default for member in Transaction.__origin__.__args__  # type: ignore[attr-defined]
)


def _line_errors(number: int, text: str, exc: ValidationError) -> list[LineError]:
    """Explain why one line was refused: bad JSON, not an object, or each invalid field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return [LineError(number, "", f"not valid JSON ({err.msg} at column {err.colno})")]
    if not isinstance(data, dict):
        return [LineError(number, "", "a transaction must be a JSON object")]
    return [LineError(number, _field_path(err["loc"]), err["msg"]) for err in exc.errors()]


def parse_transaction_lines(lines: Iterable[str], path: str = "<input>") -> list:
    """Parse and validate every line; raise TransactionFileError listing all bad lines."""
    txs = []
    errors: list[LineError] = []
    total = 0
    for number, raw in enumerate(lines, start=1):
        total = number
        text = raw.strip()
        if not text:
            continue
        try:
            txs.append(TRANSACTION_ADAPTER.validate_json(text))
        except ValidationError as exc:
            errors.extend(_line_errors(number, text, exc))
    if errors:
        raise TransactionFileError(path, errors, total)
    if not txs:
        raise TransactionFileError(path, [LineError(0, "", "the file holds no transactions")], total)
    return txs


def read_transaction_file(path: Path) -> list:
    try:
        with open(path, encoding="utf-8") as f:
            return parse_transaction_lines(f, str(path))
    except FileNotFoundError:
        raise TransactionFileError(str(path), [LineError(0, "", "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise TransactionFileError(str(path), [LineError(0, "", f"not UTF-8 text ({exc.reason})")]) from None
    except IsADirectoryError:
        raise TransactionFileError(str(path), [LineError(0, "", "is a directory, not a file")]) from None
