"""Errors a user can cause, reported as one line without a traceback. Imports nothing from the package."""


class UserError(Exception):
    """A mistake in the command line, config or files: the message names the thing and the fix."""


class DataError(UserError, ValueError):
    """A problem with the user's data or paths; the message names the thing and the fix."""


class CheckpointError(UserError):
    """A checkpoint that cannot be used (damaged, or of another model); the message names it and the way out."""


class TrainingDivergedError(Exception):
    """A loss or gradient norm became NaN or Inf; no checkpoint holding the bad state was written."""


def require(ok: bool, message: str):
    """Raises UserError(message) unless ``ok``: the one-line checks of configs and files."""
    if not ok:
        raise UserError(message)


def require_number(field: str, value, *, at_least=None, above=None, below=None, integer: bool = False):
    """Raises UserError unless ``value`` is a finite number (an int if ``integer``) within the given bounds.

    The message names the field and the bounds: "train.steps must be an integer >= 1, got 0".
    """
    kind = "an integer" if integer else "a finite number"
    bounds = [f">= {at_least}" if at_least is not None else "", f"> {above}" if above is not None else ""]
    bounds.append(f"< {below}" if below is not None else "")
    wanted = " ".join([kind, " and ".join(b for b in bounds if b)]).strip()
    ok = (
        isinstance(value, int)
        if integer
        else isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
    )
    ok = ok and not isinstance(value, bool)
    ok = ok and (at_least is None or value >= at_least) and (above is None or value > above)
    ok = ok and (below is None or value < below)
    if not ok:
        raise UserError(f"{field} must be {wanted}, got {value!r}")
