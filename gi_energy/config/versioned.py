"""A process's cache of things made from files that can change under it (a user's task
and the data it prepared, a dataset loaded from a CSV): one version per key.

``functools.lru_cache`` keyed by a file's version keeps every version it met until the
least recently used is pushed out, so a notebook that edits its task four times holds four
copies of the prepared data (on the GPU, for a task that puts it there). Here a key holds
its latest version only: asked with another version, the old value is dropped before the
new one is made."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class VersionedCache:
    """At most ``size`` keys (least recently used out first), one version of each."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, version, make: Callable[[], Any]):
        """The value of ``key`` at ``version``: kept, or made by ``make()`` (nothing is kept
        when it raises)."""
        with self._lock:  # one maker at a time: two threads would prepare the data twice
            entry = self._entries.get(key)
            if entry is not None and entry[0] == version:
                self._entries.move_to_end(key)
                return entry[1]
            del entry
            self._entries.pop(key, None)  # the old version goes before the new one is made
            value = make()
            self._entries[key] = (version, value)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
