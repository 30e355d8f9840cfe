"""The flow hash's secret key, kept with the saved bucket tables.

Every path choice comes from the flow hash, so a tenant who could compute it could put all
its flows on one switch: the hash is keyed (csrc/flow_hash.h) with 64 random bytes made at
the first start. The key lives in the state directory beside `buckets.json`, because a new key
would put every flow on a new bucket and undo what the saved tables keep. It is written once
(a temporary file of mode 0600, fsync, rename, fsync of the directory) and only read after.
"""
from __future__ import annotations

import os

from .._dataplane import HASH_KEY_LEN as KEY_BYTES

FILE_NAME = "flow-hash.key"


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


def load_or_create(directory: str) -> bytes:
    """The key saved in `directory`, made and saved first if there is none. A file that is not
    a key raises ValueError with a line that says what to do (a new key moves every flow)."""
    path = os.path.join(directory, FILE_NAME)
    try:
        with open(path, "rb") as f:
            key = f.read(KEY_BYTES + 1)
    except FileNotFoundError:
        key = new_key()
        _save(directory, path, key)
        return key
    except OSError as e:
        raise ValueError(f"{path}: cannot read the flow hash key: {e.strerror}") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path}: not a flow hash key ({len(key)} bytes, expected {KEY_BYTES}); remove it to "
                         "start with a new key, which moves every flow to a new path once")
    return key


def _save(directory: str, path: str, key: bytes) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
