"""CSV a spreadsheet opens safely: text that is never a formula (pure; no I/O).

Text in hubext's CSV files (usage reports, the audit log) comes from
identity providers, configurations and community admins: a cell that starts
like a formula (``=2+3@uni``, ``@sum(1+1)``, ``-x``) would be run by a
spreadsheet that opens the file (OWASP, "CSV Injection"). Every text cell is
written with :func:`csv_text`, every number with :func:`csv_number`, every
line with :func:`csv_line`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: What a spreadsheet takes for the start of a formula at the start of a cell
#: (OWASP, "CSV Injection"; NUL and line feed besides, as OWASP's ASVS asks).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")
#: A number a spreadsheet reads as a number: never a formula.
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def csv_text(text: str) -> str:
    """A text cell a spreadsheet shows as text: one that would start a formula
    (``=2+3@uni``, ``@sum(1+1)``, ``-x``) gets a leading ``'``, which the
    spreadsheet reads as "this is text" and does not show. So does one that
    starts with ``'`` itself: the spreadsheet shows it as it is, and a program
    reading the file gets every text back by removing one leading ``'``."""
    return "'" + text if text.startswith((*FORMULA_STARTS, "'")) else text


def csv_number(value: float, places: int | None = None) -> str:
    """A number cell: the number as written (a negative number is data, and a
    spreadsheet must be able to add it up); anything that is not a plain
    decimal number (``-inf``) is made text as :func:`csv_text` does."""
    text = str(value) if places is None else f"{value:.{places}f}"
    return text if _PLAIN_NUMBER.fullmatch(text) else csv_text(text)


def csv_line(cells: Iterable[str]) -> str:
    """One CSV line (RFC 4180): a cell with a comma, a quote or a line break
    (``\\r`` too, which the csv module leaves bare with a ``\\n`` line end)
    is quoted, its quotes doubled."""
    return ",".join(
        '"' + cell.replace('"', '""') + '"'
        if any(c in cell for c in ',"\r\n')
        else cell
        for cell in cells
    )
