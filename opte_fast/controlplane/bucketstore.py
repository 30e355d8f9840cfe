"""Bucket tables kept across restarts, so that a restart keeps every flow on its path.

A resilient bucket table is a function of its history (which members went and came, in which
order), not of its current members, and member ids are handed out in the order keys appear.
Filling the tables afresh at start would move flows whose member never went anywhere. So the
tables are saved after every commit that changed one, and at start each TEP set and nexthop
group is built from its saved table when it first appears: members still there keep their
buckets, and the buckets of members gone are shared among the others as after any removal.

Tables are saved by member key (a TEP's address, a nexthop's uplink and gateway, addresses in
hex), not by id, so they restore whatever ids the next process hands out. One file, `buckets.json`, holds them
all; it is replaced atomically (a temporary file, fsync, rename, fsync of the directory), so a
crash leaves either the old file or the new one.
"""
from __future__ import annotations

import base64
import json
import os
import zlib
from dataclasses import dataclass

import numpy as np

FILE_NAME = "buckets.json"
FORMAT = 1
NO_MEMBER = 255  # in a saved table: the bucket of no member (a table has at most 64)


@dataclass(frozen=True)
class SavedTable:
    """One table: `members` by key, and per bucket the index of its member in `members`."""
    members: tuple[str, ...]
    index: np.ndarray  # uint8, one per bucket; NO_MEMBER for none

    def encode(self) -> str:
        return base64.b64encode(zlib.compress(self.index.tobytes(), 6)).decode()

    @classmethod
    def decode(cls, members: list, text: str) -> SavedTable:
        index = np.frombuffer(zlib.decompress(base64.b64decode(text, validate=True)), dtype=np.uint8)
        if not all(isinstance(m, str) for m in members) or len(members) >= NO_MEMBER:
            raise ValueError("members must be at most 254 strings")
        if np.any((index >= len(members)) & (index != NO_MEMBER)):
            raise ValueError("a bucket names no listed member")
        return cls(tuple(members), index)


# (kind, group key): kind "tep" with a V2B prefix, or "nexthop" with a route prefix, as text
TableKey = tuple[str, str]


class BucketStore:
    """The saved tables of one data plane instance, in `directory` (created, mode 0700)."""

    def __init__(self, directory: str):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.directory = directory
        self.path = os.path.join(directory, FILE_NAME)
        self._encoded: dict[TableKey, tuple[SavedTable, str]] = {}

    def load(self, n_buckets: int) -> dict[TableKey, SavedTable]:
        """The saved tables of `n_buckets` buckets; none when there is no file. A file that
        cannot be read as saved raises ValueError naming it (the caller decides whether to
        start afresh)."""
        try:
            with open(self.path, "rb") as f:
                doc = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise ValueError(f"{self.path}: cannot read saved bucket tables: {e}") from None
        try:
            if doc["format"] != FORMAT:
                raise ValueError(f"format {doc['format']!r}, expected {FORMAT}")
            tables = {(t["kind"], t["prefix"]): SavedTable.decode(t["members"], t["buckets"]) for t in doc["tables"]}
        except (KeyError, TypeError, ValueError, zlib.error) as e:
            raise ValueError(f"{self.path}: cannot read saved bucket tables: {e!r}") from None
        return {k: t for k, t in tables.items() if len(t.index) == n_buckets}

    def save(self, tables: dict[TableKey, SavedTable]) -> None:
        """Replace the file with `tables`, atomically. Tables saved before are encoded once."""
        encoded, by_content = {}, {}
        for key, table in tables.items():
            old = self._encoded.get(key)
            if old is None or old[0] is not table:
                # Tables with the same members and history are alike (routes over the same switches).
                content = table.index.tobytes()
                old = (table, by_content.get(content) or by_content.setdefault(content, table.encode()))
            encoded[key] = old
        self._encoded = encoded
        doc = {"format": FORMAT, "tables": [
            {"kind": kind, "prefix": prefix, "members": list(table.members), "buckets": text}
            for (kind, prefix), (table, text) in sorted(encoded.items())]}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            f.write(json.dumps(doc, separators=(",", ":")))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)  # the rename itself survives a crash
        finally:
            os.close(fd)
