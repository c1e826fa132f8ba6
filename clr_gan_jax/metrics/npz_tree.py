"""Nested dicts of arrays <-> flat {'a/b/c': array} dicts, the layout of the .npz weight files."""

from typing import Any


def flatten(tree: dict, prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, (*prefix, key)))
        else:
            out["/".join((*prefix, key))] = value
    return out


def unflatten(flat: dict[str, Any]) -> dict:
    tree = {}
    for name, value in flat.items():
        *path, leaf = name.split("/")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree
