"""The Slurm backend: each dtrun job is one `sbatch` job running the in-job agent in a container.

- `settings`: the `slurm.*` settings (login, partition, account, runtime, registry), checked.
- `script`: a job -> its sbatch script (pyxis, apptainer or docker runtime).
- `commands`: running Slurm's commands here or on a login node over one multiplexed ssh connection.
- `queue`: submit, find, signal and cancel jobs; squeue/sacct/scontrol parsed into dtrun's states.
- `hosts`: partitions, nodes, GPUs (GRES) and what is free, from sinfo.

The job names and comments written by `script` are the ground truth of what runs, as Docker labels
are for the Docker backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dtrun.backends.slurm.backend import SlurmBackend


def create(settings: object, host: str | None = None) -> SlurmBackend:
    """The registry's factory: `backend: slurm` with the `slurm.*` settings (`DTRUN_SLURM_*`)."""
    from dtrun.backends.slurm.backend import SlurmBackend
    from dtrun.backends.slurm.settings import SlurmSettings
    from dtrun.config import Settings

    assert isinstance(settings, Settings)
    options = settings.backend_options("slurm")
    if host:
        options["login"] = host
    return SlurmBackend(settings, SlurmSettings.from_options(options))
