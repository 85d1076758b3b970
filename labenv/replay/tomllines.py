"""Line numbers of tables, keys and inline-table items in a TOML text.

``tomllib`` returns plain values without positions, so a scenario error could
not name its line. This module scans the text once for table headers, then
finds a key or an array item inside the region of its table. It skips strings
and comments but is not a full TOML parser. When it cannot place a path, it
returns the line of the nearest enclosing table.
"""

from __future__ import annotations

import re

# A path into the parsed document: keys and list indexes, e.g.
# ("session", 1, "step", 0, "dialog", 2, "send").
Path = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def _split_dotted(name: str) -> tuple[str, ...]:
    return tuple(part.strip().strip('"').strip("'") for part in name.split("."))


class TomlLines:
    """Positions in one TOML text, looked up by the path of a parsed value."""

    def __init__(self, text: str):
        self.lines = text.splitlines()
        # Each table region: (path with list indexes, first line, last line), 1-based.
        self._regions: list[tuple[Path, int, int]] = []
        self._index_regions()

    def _index_regions(self) -> None:
        counters: dict[tuple[str, ...], int] = {}
        current_index: dict[tuple[str, ...], int] = {}
        starts: list[tuple[Path, int]] = [((), 1)]
        for number, line in enumerate(self.lines, start=1):
            match = _HEADER.match(line)
            if not match or self._inside_multiline_string(number):
                continue
            names = _split_dotted(match.group(2))
            is_array = match.group(1) == "[["
            if is_array:
                index = counters.get(names, 0)
                counters[names] = index + 1
                current_index[names] = index
                # A new parent item restarts the numbering of its child arrays.
                for key in list(counters):
                    if len(key) > len(names) and key[: len(names)] == names:
                        del counters[key]
            path: list[str | int] = []
            for depth in range(1, len(names) + 1):
                prefix = names[:depth]
                path.append(prefix[-1])
                if prefix in current_index and (depth < len(names) or is_array):
                    path.append(current_index[prefix])
            starts.append((tuple(path), number))
        for position, (path, first) in enumerate(starts):
            last = starts[position + 1][1] - 1 if position + 1 < len(starts) else len(self.lines)
            self._regions.append((path, first, last))

    def _inside_multiline_string(self, number: int) -> bool:
        # An odd count of triple quotes above this line means it sits inside a multi-line string.
        before = "\n".join(self.lines[: number - 1])
        return (before.count('"""') % 2 == 1) or (before.count("'''") % 2 == 1)

    def line_of(self, path: Path) -> int:
        """Return the 1-based line where the value at ``path`` is written (best effort)."""
        region = self._deepest_region(path)
        if region is None:
            return 1
        table_path, first, last = region
        rest = path[len(table_path):]
        if not rest or not isinstance(rest[0], str):
            return first
        key_line = self._find_key(rest[0], first, last)
        if key_line is None:
            return first
        if len(rest) >= 2 and isinstance(rest[1], int):
            item_line = self._find_item(key_line, rest[1], last)
            if item_line is not None:
                key_in_item = rest[2] if len(rest) >= 3 and isinstance(rest[2], str) else None
                if key_in_item:
                    found = self._find_key(key_in_item, item_line, last, inline=True)
                    return found if found is not None else item_line
                return item_line
        return key_line

    def _deepest_region(self, path: Path) -> tuple[Path, int, int] | None:
        best = None
        for region in self._regions:
            table_path = region[0]
            if path[: len(table_path)] == table_path:
                if best is None or len(table_path) > len(best[0]):
                    best = region
        return best

    def _find_key(self, key: str, first: int, last: int, inline: bool = False) -> int | None:
        # Inside an inline table the key follows "{" or ","; at table level it starts the line.
        lead = r"(^|[{,\s])" if inline else r"^\s*"
        pattern = re.compile(lead + r'["\']?' + re.escape(key) + r'["\']?\s*=')
        for number in range(first, last + 1):
            if pattern.search(self.lines[number - 1]):
                return number
        return None

    def _find_item(self, key_line: int, index: int, last: int) -> int | None:
        """Return the line where item ``index`` of the array opened at ``key_line`` starts."""
        depth = 0
        item = -1
        expecting_item = False
        quote: str | None = None
        for number in range(key_line, last + 1):
            line = self.lines[number - 1]
            column = line.index("=") + 1 if number == key_line else 0
            while column < len(line):
                char = line[column]
                if quote:
                    if char == "\\" and not quote.startswith("'"):
                        column += 1
                    elif line.startswith(quote, column):
                        column += len(quote) - 1
                        quote = None
                    column += 1
                    continue
                if char == "#":
                    break
                if depth == 1 and expecting_item and not char.isspace() and char not in ",]":
                    item += 1
                    expecting_item = False
                    if item == index:
                        return number
                if line.startswith('"""', column) or line.startswith("'''", column):
                    quote = line[column:column + 3]
                    column += 2
                elif char in "\"'":
                    quote = char
                elif char in "[{":
                    depth += 1
                    expecting_item = depth == 1
                elif char in "]}":
                    depth -= 1
                    if depth == 0:
                        return None
                elif char == "," and depth == 1:
                    expecting_item = True
                column += 1
        return None
