"""The usage ledger's writer process: the child's side, and the messages' framing.

The hub's side is :mod:`.writer_process` (what it keeps, and the messages).
The child reads events on its standard input, writes them with a
:class:`~hubext.usage.writer.ThreadWriter`, and answers on its standard
output; its log lines go to the hub, which logs them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import pickle
import struct
import sys
import threading
from datetime import UTC, datetime, timedelta
from operator import itemgetter

from .writer import CloseOpen, End, Start, ThreadWriter, scrub

_HEADER = struct.Struct("!I")

#: A start's row as sent: these values, then started_at and last_seen_at.
ROW = (
    "id",
    "username",
    "server_name",
    "community",
    "profile",
    "choices",
    "cpu_request",
    "cpu_limit",
    "mem_request",
    "mem_limit",
    "gpus",
)
row_values = itemgetter(*ROW)

# Moments travel as integer microseconds since the epoch: exact, and five
# times cheaper to pickle than an aware datetime.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


def moment(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def frame(message) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def unframe(buffer: bytearray) -> list:
    """The whole messages at the start of ``buffer``, removed from it."""
    messages, at = [], 0
    while len(buffer) - at >= _HEADER.size:
        (size,) = _HEADER.unpack_from(buffer, at)
        if len(buffer) - at - _HEADER.size < size:
            break
        at += _HEADER.size
        messages.append(pickle.loads(buffer[at : at + size]))
        at += size
    del buffer[:at]
    return messages


class _ChildWriter(ThreadWriter):
    """The writer thread in the child: tells the hub what is written."""

    def __init__(self, send, **kwargs):
        super().__init__(**kwargs)
        self._send = send

    def written(self, upto: int) -> None:
        self._send(("written", upto))

    def report_outage(self, cause: str, waiting: int) -> None:
        self._send(("outage", self.outage_since, cause, waiting))

    def report_recovered(self, seconds: float, written: int, refused: int) -> None:
        self._send(("recovered", seconds, written))


class _ToHub(logging.Handler):
    def __init__(self, send):
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        self._send(("log", record.levelno, record.getMessage()))


def main() -> None:
    """The writer process: read events on stdin, answer on stdout."""
    with contextlib.suppress(AttributeError, OSError):
        # Linux: a batch task (its threads too) has its fair share of the CPU
        # but never preempts the hub when the hub's write wakes it up
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    answers = os.dup(1)
    # nothing else may write to the answers' pipe
    os.dup2(2, 1)
    sent = threading.Lock()

    def send(message) -> None:
        data = frame(message)
        with sent:
            try:
                while data:
                    data = data[os.write(answers, data) :]
            except OSError:
                os._exit(0)  # the hub is gone

    events = bytearray()
    writer: _ChildWriter | None = None
    while True:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            # the hub exited or was killed without saying close: write
            # nothing more (a new hub may already be closing its sessions)
            os._exit(0)
        events += chunk
        for message in unframe(events):
            kind, *args = message
            if kind == "config":
                writer = _start_writer(args[0], send)
            elif kind == "start":
                seq, values, started_at, last_seen_at = args
                row = dict(zip(ROW, values, strict=True))
                row["started_at"] = moment(started_at)
                row["last_seen_at"] = moment(last_seen_at)
                writer.put(Start(row), seq)
            elif kind == "end":
                seq, key, at, reason = args
                writer.put(End(key, moment(at), reason), seq)
            elif kind == "beat":
                seq, keys, at = args
                writer.beat(keys, moment(at), seq)
            elif kind == "close_open":
                seq, at_most = args
                future = _closed_future(seq, send, writer._secret)
                writer.put(CloseOpen(moment(at_most), future), seq)
            elif kind == "close":
                writer.close(timeout=args[0])
                os._exit(0)


def _start_writer(settings: dict, send) -> _ChildWriter:
    log = logging.getLogger("hubext.usage")
    log.setLevel(settings["log_level"])
    root = logging.getLogger()
    root.addHandler(_ToHub(send))
    root.setLevel(logging.WARNING)
    writer = _ChildWriter(
        send,
        db_url=settings["db_url"],
        log=log,
        max_pending=sys.maxsize,  # the hub keeps the bound
        retry_initial=settings["retry_initial"],
        retry_max=settings["retry_max"],
    )
    writer.start()
    return writer


def _closed_future(seq: int, send, secret: str | None) -> concurrent.futures.Future:
    future: concurrent.futures.Future = concurrent.futures.Future()

    def answer(done: concurrent.futures.Future) -> None:
        error = done.exception()
        if error is None:
            send(("closed", seq, done.result(), None))
        else:
            send(("closed", seq, None, scrub(str(error), secret)))

    future.add_done_callback(answer)
    return future
