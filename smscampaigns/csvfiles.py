"""Reading the CSV files people import: the encoding, the delimiter, the records.

Marketers export from Excel, which writes UTF-8 only when asked ("CSV UTF-8")
and otherwise the Windows code page of its language: Windows-1252 for
English, German, Swedish, Dutch, Italian and French. "Unicode text" is
UTF-16. A file is read in one of those encodings or refused, never guessed
into mojibake: the whole file must decode, and a file whose lines disagree
(some UTF-8, some not) is refused with the lines that disagree.
"""

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from charset_normalizer import from_bytes
from django.utils.translation import gettext as _

READ_SIZE = 1 << 20
# What charset_normalizer looks at when the file is not UTF-8: the first
# lines that are not plain ASCII, which are the ones that tell encodings apart.
SAMPLE_SIZE = 64 * 1024

# Byte order marks, the longest first (UTF-32 LE starts like UTF-16 LE).
BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
WIDE_ENCODINGS = ["utf_16_le", "utf_16_be", "utf_32_le", "utf_32_be"]
WESTERN_ENCODINGS = ["cp1252", "latin_1"]

ENCODING_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "utf-16": "UTF-16",
    "utf-32": "UTF-32",
    "utf_16_le": "UTF-16",
    "utf_16_be": "UTF-16",
    "utf_32_le": "UTF-32",
    "utf_32_be": "UTF-32",
    "cp1252": "Windows-1252",
    "latin_1": "Latin-1 (ISO-8859-1)",
}

MAX_CELL = 100_000
csv.field_size_limit(MAX_CELL)


class FileRefused(Exception):
    """The file cannot be read as CSV text; the message says why and what to do."""


def _spreadsheet_kind(head: bytes) -> str | None:
    if head.startswith(b"PK\x03\x04"):
        return _("a zipped file, such as an Excel workbook (.xlsx)")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return _("an Excel 97–2003 workbook (.xls)")
    return None


def _undecodable_line(raw: BinaryIO, encoding: str) -> int | None:
    """The line holding the first bytes `encoding` cannot decode, or None when all decode."""
    raw.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    lines = 1
    while True:
        data = raw.read(READ_SIZE)
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as error:
            return lines + _newlines_in(data[: error.start], encoding)
        lines += text.count("\n")
        if not data:
            return None


def _newlines_in(data: bytes, encoding: str) -> int:
    return data.decode(encoding, errors="ignore").count("\n")


@dataclass
class _LineSurvey:
    utf8_line: int | None = None
    other_line: int | None = None
    sample: bytes = b""


def _survey_lines(raw: BinaryIO) -> _LineSurvey:
    """Which lines are UTF-8 with accents, which are not, and a sample of the latter."""
    raw.seek(0)
    survey = _LineSurvey()
    sample = []
    size = 0
    for number, line in enumerate(raw, start=1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            survey.other_line = survey.other_line or number
            if size < SAMPLE_SIZE:
                sample.append(line)
                size += len(line)
        else:
            survey.utf8_line = survey.utf8_line or number
        if survey.utf8_line and survey.other_line and size >= SAMPLE_SIZE:
            break
    survey.sample = b"".join(sample)
    return survey


def detect_encoding(raw: BinaryIO) -> str:
    """The codec that reads the whole of `raw`, or FileRefused saying why none does.

    `raw` must be seekable: the file is read once to check it decodes, and
    again to import it.
    """
    raw.seek(0)
    head = raw.read(SAMPLE_SIZE)
    raw.seek(0)
    if not head:
        raise FileRefused(_("The file is empty: it needs a header row."))
    kind = _spreadsheet_kind(head)
    if kind:
        raise FileRefused(
            _("This is %(kind)s, not a CSV file. In Excel, use File → Save As → “CSV UTF-8”.")
            % {"kind": kind}
        )
    for mark, encoding in BYTE_ORDER_MARKS:
        if head.startswith(mark):
            _must_decode(raw, encoding)
            return encoding
    if head.count(b"\x00") > len(head) // 8:
        # Many NUL bytes: UTF-16 or UTF-32 without a byte order mark, or no text at all.
        # (A stray NUL in a cell is that row's problem, not the file's.)
        guess = from_bytes(head, cp_isolation=WIDE_ENCODINGS).best()
        if guess is None:
            raise FileRefused(_("The file is not text: it cannot be read as CSV."))
        _must_decode(raw, guess.encoding)
        return guess.encoding
    if _undecodable_line(raw, "utf-8") is None:
        return "utf-8"
    survey = _survey_lines(raw)
    if survey.utf8_line and survey.other_line:
        raise FileRefused(
            _(
                "The file mixes two encodings: line %(utf8)s is UTF-8, line %(other)s is not. "
                "Save it again as “CSV UTF-8” so that every line is read the same way."
            )
            % {"utf8": survey.utf8_line, "other": survey.other_line}
        )
    guess = from_bytes(survey.sample or head, cp_isolation=WESTERN_ENCODINGS).best()
    if guess is None:
        raise FileRefused(
            _(
                "The file is not UTF-8 (line %(line)s), and its encoding cannot be told with confidence. "
                "Save it again as “CSV UTF-8”."
            )
            % {"line": survey.other_line}
        )
    # Latin-1 and Windows-1252 agree on every letter; Windows-1252 also has
    # € and typographic quotes where Latin-1 has control characters.
    if _undecodable_line(raw, "cp1252") is None:
        return "cp1252"
    return "latin_1"


def _must_decode(raw: BinaryIO, encoding: str) -> None:
    line = _undecodable_line(raw, encoding)
    if line is not None:
        raise FileRefused(
            _(
                "The file starts as %(encoding)s, but line %(line)s is not %(encoding)s. "
                "Save it again as “CSV UTF-8”."
            )
            % {"encoding": ENCODING_NAMES.get(encoding, encoding), "line": line}
        )


def encoding_name(encoding: str) -> str:
    return ENCODING_NAMES.get(encoding, encoding)


class CountingReader(io.RawIOBase):
    """Passes a binary file through, counting the bytes read (the import's progress)."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.count = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)


def open_text(raw: BinaryIO, encoding: str) -> tuple[io.TextIOWrapper, CountingReader]:
    raw.seek(0)
    counter = CountingReader(raw)
    # newline="": the csv module handles line ends itself, quoted ones included.
    text = io.TextIOWrapper(io.BufferedReader(counter, READ_SIZE), encoding=encoding, newline="")
    return text, counter


@dataclass
class Record:
    """One record of the file: its cells, and the lines it spans (a quoted cell may hold line breaks)."""

    line: int
    last_line: int
    cells: list[str]
    error: str = ""


_SEPARATOR_LINE = re.compile(r"^sep=(.)\s*$", re.IGNORECASE)


def read_records(text: io.TextIOBase) -> Iterator[Record]:
    """The records of a CSV text, the header first.

    The delimiter is the header's: comma, semicolon or tab, or the one an
    Excel "sep=;" first line names. A record the csv module cannot parse is
    yielded with its error, and reading goes on after it.
    """
    first = text.readline()
    offset = 0
    separator = _SEPARATOR_LINE.match(first)
    if separator:
        offset = 1
        delimiter = separator.group(1)
        first = text.readline()
    else:
        delimiter = _sniff_delimiter(first)
    reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
    previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield Record(previous + 1 + offset, reader.line_num + offset, [], str(error))
        else:
            if cells:
                yield Record(previous + 1 + offset, reader.line_num + offset, cells)
        previous = reader.line_num


def _sniff_delimiter(header: str) -> str:
    counts = {delimiter: header.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","
