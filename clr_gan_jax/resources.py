"""Refusing a run that cannot fit in memory, before anything is allocated: the compiled train step's own account.

XLA's memory analysis of the compiled step (parameters, optimizer state, batch, activations
and temporaries of one device's program) against the device's memory limit on GPU/TPU, or
against the machine's RAM on CPU, where this process's devices share it.
"""

import os

from clr_gan_jax.errors import UserError

# The share of the memory a run may plan to use: the analysis leaves out the runtime's own overheads.
USABLE_FRACTION = 0.85
GIB = 2**30


def program_bytes(compiled) -> int:
    """Peak bytes of one device's program: arguments + outputs (less the donated ones) + temporaries."""
    m = compiled.memory_analysis()
    return m.argument_size_in_bytes + m.output_size_in_bytes - m.alias_size_in_bytes + m.temp_size_in_bytes


def memory_limit(device) -> tuple[int, str]:
    """(bytes, description) of the memory ``device``'s programs share."""
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return stats["bytes_limit"], f"{device.device_kind} {device.id}"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine's RAM"


def require_fits(compiled, mesh, what: str = "one train step"):
    """UserError if ``compiled`` cannot fit: its estimate, the limit, and what to lower."""
    device = mesh.local_devices[0]
    limit, where = memory_limit(device)
    programs = len(mesh.local_devices) if device.platform == "cpu" else 1  # CPU devices share the RAM
    needed = program_bytes(compiled) * programs
    if needed > USABLE_FRACTION * limit:
        raise UserError(
            f"{what} needs about {needed / GIB:.1f} GiB (parameters, optimizer state, batch and activations, as "
            f"compiled for {programs} device(s)), more than the {USABLE_FRACTION * limit / GIB:.1f} GiB usable of "
            f"{where}: lower train.batch_size, data.resolution or the model's widths"
        )
    return needed
