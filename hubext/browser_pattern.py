"""A Python ``validation_regex`` as an HTML ``pattern`` attribute. Pure, no I/O.

Browsers compile ``pattern`` as ``new RegExp("^(?:" + pattern + ")$", "v")``.
The ``v`` flag is strict: inside a class, ``-``, ``(``, ``)``, ``[``, ``{``,
``/``, ``|`` and doubled punctuators (``&&``, ``--``, ...) must be escaped,
so a Python regex copied as it is (``[a-z0-9-]{1,40}``) makes an invalid
pattern: a console error, and no check in the browser at all.

:func:`browser_pattern` rewrites the regex from Python's own parse of it, so
that the browser accepts the same strings as the hub's ``re.fullmatch``:
every character but ASCII letters and digits is written as an escape
(``\\xHH``, ``\\u{H}``), which the ``v`` flag accepts anywhere; ``\\d``,
``\\w`` and ``\\s`` become the Unicode sets Python uses for ``str``
patterns; ``.`` excludes only ``\\n``; groups become non-capturing. A regex
whose meaning JavaScript cannot reproduce (back-references, conditionals,
case-insensitive or multi-line flags, ``\\b`` outside ASCII mode, atomic
groups, possessive repeats) gives None: the form then has no ``pattern``
attribute, and the hub's check alone applies, as it always does.
"""

from __future__ import annotations

import re

# Python's own regex parser (the public sre_parse alias is deprecated).
import re._constants as _c
import re._parser as _parser

#: Python's ``\s`` for ``str`` patterns (``str.isspace``), as code points.
_SPACE = [code for code in range(0x3001) if chr(code).isspace()]


class _Untranslatable(Exception):
    pass


def _char(code: int) -> str:
    char = chr(code)
    if char.isascii() and char.isalnum():
        return char
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{{{code:x}}}"


def _category_members(category, ascii_only: bool) -> str:
    """The members, for use inside ``[...]``, of one ``\\d \\w \\s`` category."""
    if ascii_only:
        sets = {
            _c.CATEGORY_DIGIT: "0-9",
            _c.CATEGORY_NOT_DIGIT: "[^0-9]",
            _c.CATEGORY_WORD: "a-zA-Z0-9\\x5f",
            _c.CATEGORY_NOT_WORD: "[^a-zA-Z0-9\\x5f]",
        }
    else:
        sets = {
            _c.CATEGORY_DIGIT: "\\p{Nd}",
            _c.CATEGORY_NOT_DIGIT: "\\P{Nd}",
            _c.CATEGORY_WORD: "\\p{L}\\p{N}\\x5f",
            _c.CATEGORY_NOT_WORD: "[^\\p{L}\\p{N}\\x5f]",
        }
    space = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20] if ascii_only else _SPACE
    sets[_c.CATEGORY_SPACE] = "".join(_char(c) for c in space)
    sets[_c.CATEGORY_NOT_SPACE] = "[^" + sets[_c.CATEGORY_SPACE] + "]"
    try:
        return sets[category]
    except KeyError:
        raise _Untranslatable(category) from None


class _Translator:
    def __init__(self, flags: int):
        unsupported = re.IGNORECASE | re.MULTILINE | re.LOCALE
        if flags & unsupported:
            raise _Untranslatable("flags")
        self.ascii = bool(flags & re.ASCII)
        self.dotall = bool(flags & re.DOTALL)

    def sequence(self, items) -> str:
        return "".join(self.item(op, av) for op, av in items)

    def item(self, op, av) -> str:
        if op is _c.LITERAL:
            return _char(av)
        if op is _c.NOT_LITERAL:
            return f"[^{_char(av)}]"
        if op is _c.ANY:
            return "[\\s\\S]" if self.dotall else "[^\\x0a]"
        if op is _c.IN:
            return self.char_class(av)
        if op is _c.BRANCH:
            return "(?:" + "|".join(self.sequence(alt) for alt in av[1]) + ")"
        if op is _c.SUBPATTERN:
            _group, add_flags, del_flags, items = av
            if add_flags or del_flags:
                raise _Untranslatable("inline flags")
            return f"(?:{self.sequence(items)})"
        if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
            low, high, items = av
            high_text = "" if high == _c.MAXREPEAT else str(high)
            bounds = f"{{{low}}}" if high == low else f"{{{low},{high_text}}}"
            lazy = "?" if op is _c.MIN_REPEAT else ""
            return f"(?:{self.sequence(items)}){bounds}{lazy}"
        if op in (_c.ASSERT, _c.ASSERT_NOT):
            direction, items = av
            sign = "=" if op is _c.ASSERT else "!"
            behind = "<" if direction < 0 else ""
            return f"(?{behind}{sign}{self.sequence(items)})"
        if op is _c.AT:
            return self.at(av)
        raise _Untranslatable(op)

    def at(self, where) -> str:
        if where in (_c.AT_BEGINNING, _c.AT_BEGINNING_STRING):
            return "^"
        if where is _c.AT_END_STRING:
            return "$"
        if where is _c.AT_END:
            return "(?=\\x0a?$)"  # Python's $: the end, or before a final newline
        if self.ascii and where is _c.AT_BOUNDARY:
            return "\\b"
        if self.ascii and where is _c.AT_NON_BOUNDARY:
            return "\\B"
        raise _Untranslatable(where)

    def char_class(self, items) -> str:
        negate = ""
        members = []
        for op, av in items:
            if op is _c.NEGATE:
                negate = "^"
            elif op is _c.LITERAL:
                members.append(_char(av))
            elif op is _c.RANGE:
                members.append(f"{_char(av[0])}-{_char(av[1])}")
            elif op is _c.CATEGORY:
                members.append(_category_members(av, self.ascii))
            else:
                raise _Untranslatable(op)
        return f"[{negate}{''.join(members)}]"


def browser_pattern(regex: str) -> str | None:
    """A ``pattern`` attribute accepting what ``re.fullmatch(regex, s)`` accepts.

    None when JavaScript cannot express the same test: leave ``pattern`` out.
    """
    try:
        parsed = _parser.parse(regex)
        translator = _Translator(parsed.state.flags)
        return translator.sequence(parsed)
    except (_Untranslatable, re.error, RecursionError):
        return None
