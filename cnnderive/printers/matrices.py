"""Numbers as a student reads them, and matrices that fit the terminal.

Values are shown as printers/numbers.py says (exact where short, else rounded); a matrix whose shown
values are all exact is labelled `=`; otherwise `≈`, and then every entry is a decimal (no p/q).
Big matrices show their corners, with … where rows or columns are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.style import Style
from rich.text import Text

from .numbers import shown, shown_decimal

MAX_SIDE = 12  # rows (and at most columns) of a matrix shown in full
MARK_STYLE = "bold magenta"
# Spaces that align things get a style of their own (it prints as nothing), so that each piece of
# text after them is a segment of its own: an SVG export then places it by its column, instead of
# leaving the alignment to how the SVG viewer treats leading spaces (librsvg drops them).
GAP = Style(meta={"gap": True})


def put(line: Text, text: str, style: str | Style = "") -> Text:
    """Append text to a line, its leading and trailing spaces as GAP."""
    body = text.strip(" ")
    lead = len(text) - len(text.lstrip(" "))
    if lead:
        line.append(" " * lead, GAP)
    if body:
        line.append(body, style)
    trail = len(text) - lead - len(body)
    if trail > 0:
        line.append(" " * trail, GAP)
    return line


def number(value: object, approx: float | None = None) -> tuple[str, bool]:
    """(text, exact), as every printer shows numbers (printers/numbers.py)."""
    return shown(value, approx)


def number_text(value: object, approx: float | None = None) -> str:
    return shown(value, approx)[0]


def _shown(size: int, limit: int) -> list[int | None]:
    """Indices to show: all of them, or both ends with None where the middle is left out."""
    if size <= limit:
        return list(range(size))
    head = (limit + 1) // 2
    tail = limit - head
    return list(range(head)) + [None] + list(range(size - tail, size))


@dataclass
class Matrix:
    """A labelled matrix (2-D) or row vector (1-D), right-aligned, capped to fit the width.

    `marked` highlights cells (colour and [brackets], so it reads without colour too);
    `names` puts a header row of element names over a vector.
    """

    label: str
    values: np.ndarray
    marked: np.ndarray | None = None
    names: list[str] | None = None
    approx: np.ndarray | None = None  # the same values as floats, for the decimals of non-rational ones
    title: str = ""
    max_side: int = MAX_SIDE
    dim_zeros: bool = False
    _cache: dict = field(default_factory=dict, repr=False)
    _lines: dict = field(default_factory=dict, repr=False)

    def _grid(self) -> np.ndarray:
        values = np.asarray(self.values, dtype=object)
        return values.reshape(1, -1) if values.ndim == 1 else values

    def _cell(self, i: int, j: int, decimal: bool = False) -> tuple[str, bool]:
        """The shown text of one entry and whether it is exact; `decimal`: never as p/q."""
        if (i, j, decimal) not in self._cache:
            approx = None
            if self.approx is not None:
                approx = np.asarray(self.approx).reshape(self._grid().shape)[i, j]
            show = shown_decimal if decimal else number
            self._cache[i, j, decimal] = show(self._grid()[i, j], approx)
        return self._cache[i, j, decimal]

    def _has_marks(self) -> bool:
        return self.marked is not None and bool(np.asarray(self.marked).any())

    def _is_marked(self, i: int, j: int) -> bool:
        if self.marked is None:
            return False
        marked = np.asarray(self.marked)
        return bool(marked.reshape(1, -1)[i, j] if marked.ndim == 1 else marked[i, j])

    def lines(self, width: int) -> list[Text]:
        if width not in self._lines:
            self._lines[width] = self._fit(width)
        return [line.copy() for line in self._lines[width]]

    def _fit(self, width: int) -> list[Text]:
        grid = self._grid()
        rows = _shown(grid.shape[0], self.max_side)
        limit = self.max_side if np.ndim(self.values) == 2 else max(self.max_side, 16)
        while True:
            cols = _shown(grid.shape[1], limit)
            lines = self._render(grid, rows, cols)
            if max(line.cell_len for line in lines) <= width or limit <= 2:
                return lines
            limit -= 1

    def _render(self, grid: np.ndarray, rows: list, cols: list) -> list[Text]:
        marks = self._has_marks()
        cells = [(i, j) for i in rows for j in cols if i is not None and j is not None]
        exact = all(self._cell(i, j)[1] for i, j in cells)
        texts = {}
        for i, j in cells:
            text = self._cell(i, j, decimal=not exact)[0]  # one rounded entry: all decimals, no p/q beside them
            texts[i, j] = f"[{text}]" if self._is_marked(i, j) else (f" {text} " if marks else text)
        header = None
        if self.names is not None:  # each name ends where its number ends (a marked cell has one more column)
            header = {j: (self.names[j] if j is not None else "…") + (" " if marks else "") for j in cols}
        widths = {}
        for j in cols:
            shown = [texts[i, j] for i in rows if i is not None and j is not None] or ["…"]
            if header is not None:
                shown.append(header[j])
            widths[j] = max(len(t) for t in shown)
        head = f"{self.label} {'=' if exact else '≈'} "
        pad = " " * len(head)
        body_rows = [self._row(i, cols, texts, widths) for i in rows]
        middle = len(body_rows) // 2
        out = []
        if self.title:
            out.append(put(Text(), pad + self.title, "dim"))
        if header is not None:  # under the row's "[ ", then the columns as in _row
            names = put(Text(), pad + "  ")
            for n, j in enumerate(cols):
                put(names, ("  " if n else "") + header[j].rjust(widths[j]), "dim")
            out.append(names)
        for k, row in enumerate(body_rows):
            left, right = _brackets(k, len(body_rows))
            line = put(Text(), head if k == middle else pad)
            put(line, left + " ")
            line.append_text(row)
            put(line, " " + right)
            out.append(line)
        if None in rows or None in cols:
            shape = "x".join(map(str, self.values.shape))
            out.append(put(Text(), pad + f"({shape}; only the corners are shown)", "dim"))
        return out

    def _row(self, i, cols, texts, widths) -> Text:
        row = Text()
        for n, j in enumerate(cols):
            if n:
                put(row, "  ")
            if i is None:
                put(row, ("⋮ " if self._has_marks() and j is not None else "⋮").rjust(widths[j]), "dim")
            elif j is None:
                put(row, "…".rjust(widths[j]), "dim")
            else:
                text = texts[i, j]
                style = (
                    MARK_STYLE if self._is_marked(i, j) else ("dim" if self.dim_zeros and text.strip() == "0" else "")
                )
                put(row, text.rjust(widths[j]), style)
        return row

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.lines(options.max_width):
            line.no_wrap = True
            line.overflow = "ellipsis"
            yield line

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        width = max(line.cell_len for line in self.lines(options.max_width))
        return Measurement(width, width)


def _brackets(k: int, n: int) -> tuple[str, str]:
    if n == 1:
        return "[", "]"
    if k == 0:
        return "⎡", "⎤"
    if k == n - 1:
        return "⎣", "⎦"
    return "⎢", "⎥"
