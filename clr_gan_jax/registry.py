"""Registries: names in configs resolved to code, with one-line errors for unknown names.

ARCHITECTURES = Registry("model.arch")

@ARCHITECTURES.register("dcgan")
def build_dcgan(...): ...

ARCHITECTURES.get("dcgan")   # -> build_dcgan
ARCHITECTURES.get("dcagn")   # UserError: model.arch: unknown name 'dcagn'; known: dcgan, mlp
"""

from collections.abc import Callable, Iterator
from typing import Any

from clr_gan_jax.errors import UserError


class Registry:
    """Maps names to objects for one kind of component; ``what`` names the config field in errors."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator that registers its argument under ``name`` and returns it unchanged."""

        def add(obj):
            if name in self._entries:
                raise ValueError(f"{self.what}: {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> Any:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UserError(f"{self.what}: unknown name {name!r}; known: {', '.join(self._entries)}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)
