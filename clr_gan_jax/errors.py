"""Errors a user can cause, reported as one line without a traceback. Imports nothing from the package."""


class UserError(Exception):
    """A mistake in the command line, config or files: the message names the thing and the fix."""


class DataError(UserError, ValueError):
    """A problem with the user's data or paths; the message names the thing and the fix."""


class CheckpointError(UserError):
    """A checkpoint that cannot be used (damaged, or of another model); the message names it and the way out."""


class TrainingDivergedError(Exception):
    """A loss or gradient norm became NaN or Inf; no checkpoint holding the bad state was written."""
