"""Writing entry streams (range, tail, export, replay) in any format with bounded memory.

A writer takes batches of raw entries and writes each batch as it comes: ndjson line by line,
json as one array written incrementally, yaml as one sequence, table as aligned Rich rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamctl.core.models import Entry, RawEntry
from streamctl.render.serialize import dump_yaml, entry_data, ndjson_bytes, ndjson_lines

Write = Callable[[str], None]


class EntryWriter:
    def __init__(
        self,
        fmt: str,
        write: Write,
        print_table: Callable[[Any], None] | None = None,
        write_bytes: Callable[[bytes], None] | None = None,
    ) -> None:
        self.fmt = fmt
        self.write = write
        self.write_bytes = write_bytes
        self.print_table = print_table
        self.count = 0
        self._json_open = False

    def begin(self) -> None:
        if self.fmt == "json":
            self.write("[")
            self._json_open = True

    def batch(self, stream: str, entries: list[RawEntry], *, show_stream: bool = False) -> None:
        if not entries:
            return
        fmt = self.fmt
        if fmt == "ndjson":
            if self.write_bytes is not None:
                self.write_bytes(ndjson_bytes(stream, entries))
            else:
                self.write(ndjson_lines(stream, entries))
        elif fmt == "json":
            lines = ndjson_lines(stream, entries).rstrip("\n").split("\n")
            sep = ",\n  " if self.count else "\n  "
            self.write(sep + ",\n  ".join(lines))
        elif fmt == "yaml":
            self.write(dump_yaml([entry_data(Entry.from_raw(stream, e)) for e in entries]))
        else:
            from streamctl.render.tables import entries_table

            objs = [Entry.from_raw(stream, e) for e in entries]
            assert self.print_table is not None
            self.print_table(
                entries_table(objs, show_header=self.count == 0, show_stream=show_stream)
            )
        self.count += len(entries)

    def end(self) -> None:
        if self.fmt == "json" and self._json_open:
            self.write("\n]\n" if self.count else "]\n")
            self._json_open = False
        elif self.fmt == "yaml" and self.count == 0:
            self.write("[]\n")
