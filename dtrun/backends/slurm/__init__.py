"""The Slurm backend: each dtrun job is one `sbatch` job running the in-job agent in a container.

- `settings`: the `slurm.*` settings (login, partition, account, runtime, registry), checked.
- `script`: a job -> its sbatch script (pyxis, apptainer or docker runtime).
- `commands`: running Slurm's commands here or on a login node over one multiplexed ssh connection.
- `queue`: submit, find, signal and cancel jobs; squeue/sacct/scontrol parsed into dtrun's states.
- `hosts`: partitions, nodes, GPUs (GRES) and what is free, from sinfo.

The job names and comments written by `script` are the ground truth of what runs, as Docker labels
are for the Docker backend.
"""
