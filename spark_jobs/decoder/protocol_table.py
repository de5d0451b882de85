"""Numeric codes for protocol names, so that names can be chosen with numpy masks."""

from __future__ import annotations


class NameTable:
    """Interns protocol names as small integer codes; ``names[code]`` is the name."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._codes: dict[str, int] = {}

    def code(self, name: str) -> int:
        code = self._codes.get(name)
        if code is None:
            code = len(self.names)
            self._codes[name] = code
            self.names.append(name)
        return code
