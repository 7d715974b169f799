"""A registry is a dict and a decorator: adding an entry is one new function, no edits elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from autostudent.errors import UserError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries of one noun (datasets, KD losses, search spaces, teachers) found by name."""

    def __init__(self, noun: str, *, also: str = "") -> None:
        self.noun = noun
        self.also = also  # what an unknown name's message adds after the known names
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.noun} {name!r} is registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            also = f"; {self.also}" if self.also else ""
            raise UserError(f"unknown {self.noun} {name!r} (known: {known}{also})") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))
