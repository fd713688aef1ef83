"""Keeping secrets, and every piece of one, out of text (pure; no I/O).

A message cut to a length can cut a secret in it: what is left is no longer
the whole secret, so replacing only whole occurrences misses it. :func:`scrub`
replaces the whole secret and every piece of it of :data:`MIN_FRAGMENT`
characters or more, wherever it stands; :func:`scrub_and_cut` scrubs first
and cuts after, so a cut can never leave such a piece behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

#: The shortest piece of a secret that is replaced (shorter secrets: whole).
MIN_FRAGMENT = 8

#: What stands in for a secret, or a piece of one.
MARK = "[secret]"


def scrub(
    text: str, secrets: Iterable[str | None], *, min_fragment: int = MIN_FRAGMENT
) -> str:
    """``text`` with each secret, and each piece of one of ``min_fragment``
    characters or more, replaced by ``[secret]`` (one mark per run).

    A piece longer than ``min_fragment`` is a chain of overlapping pieces of
    exactly ``min_fragment`` characters, so it is enough to look for those.
    """
    for secret in secrets:
        if not secret or not text:
            continue
        size = min(min_fragment, len(secret))
        pieces = {secret[i : i + size] for i in range(len(secret) - size + 1)}
        runs: list[list[int]] = []
        for i in range(len(text) - size + 1):
            if text[i : i + size] in pieces:
                if runs and i <= runs[-1][1]:
                    runs[-1][1] = i + size
                else:
                    runs.append([i, i + size])
        if not runs:
            continue
        parts, done = [], 0
        for start, end in runs:
            parts += [text[done:start], MARK]
            done = end
        text = "".join(parts) + text[done:]
    return text


def scrub_and_cut(text: str, secrets: Iterable[str | None], limit: int) -> str:
    """``text`` scrubbed, then cut to ``limit`` characters (never the reverse)."""
    return scrub(text, secrets)[:limit]


class RedactFilter(logging.Filter):
    """Scrub a secret from every log record: message, arguments, traceback.

    ``secret`` is the secret, or a callable returning it (read at each
    record, so a secret set after logging was configured is kept out too).
    """

    def __init__(self, secret: str | Callable[[], str | None]):
        super().__init__()
        self._secret = secret if callable(secret) else (lambda: secret)

    def filter(self, record: logging.LogRecord) -> bool:
        secret = self._secret()
        if not secret:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = scrub(message, [secret])
        record.args = ()
        if record.exc_text:
            record.exc_text = scrub(record.exc_text, [secret])
        record.exc_info = None
        if record.stack_info:
            record.stack_info = scrub(record.stack_info, [secret])
        return True
