"""Running a run's jobs: each as soon as the jobs it needs have succeeded, several at a time.

Independent jobs (e.g. two runtime deps of one workflow) run in parallel threads, up to `limit` (the
engine gives every job a thread and bounds the jobs that use the host itself, `Engine.slot`). An `admit` check
decides whether a ready job may start now (e.g. whether a GPU is free); a job it refuses waits for
another job to finish. A job whose upstream failed is skipped, not run; independent jobs go on.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Protocol

from dtrun.plan import Job


class Admission(Protocol):
    def __call__(self, job: Job, running: list[Job]) -> bool: ...


def admit_all(job: Job, running: list[Job]) -> bool:
    return True


def parallel_limit(setting: str | None, host_cpus: int | None) -> int:
    """The `max_parallel` setting, else one job per CPU of the Docker host."""
    if setting:
        try:
            value = int(setting)
        except ValueError:
            value = 0
        if value < 1:
            from dtrun.errors import DtrunError

            raise DtrunError(f"max_parallel must be a positive number, not '{setting}'",
                             hint="dtrun config set max_parallel 2")
        return value
    return max(1, host_cpus or 1)


class Scheduler:
    def __init__(self, jobs: list[Job], run: Callable[[Job], bool], skip: Callable[[Job, str], None], *,
                 limit: int, admit: Admission = admit_all, done: dict[str, bool] | None = None) -> None:
        self.pending = list(jobs)
        self.run_job = run
        self.skip = skip
        self.limit = max(1, limit)
        self.admit = admit
        self.results: dict[str, bool] = dict(done or {})
        self.errors: list[BaseException] = []
        self._running: dict[cf.Future[bool], Job] = {}
        self._pool = cf.ThreadPoolExecutor(max_workers=self.limit, thread_name_prefix="dtrun-job")

    @property
    def running(self) -> list[Job]:
        return list(self._running.values())

    def poll(self, timeout: float) -> bool:
        """Start what may start, wait up to `timeout` for a job to end; True once every job is settled."""
        self._start_ready()
        if not self._running:
            self._pool.shutdown(wait=False)
            return not self.pending or self._stuck()
        done, _ = cf.wait(list(self._running), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        for future in done:
            job = self._running.pop(future)
            try:
                self.results[job.workflow] = future.result()
            except BaseException as exc:  # re-raised by the engine once the run is saved
                self.results[job.workflow] = False
                self.errors.append(exc)
        self._start_ready()
        if not self._running and not self.pending:
            self._pool.shutdown(wait=False)
            return True
        return False

    def _stuck(self) -> bool:
        for job in self.pending:
            self.skip(job, "not run: the scheduler could not admit it")
            self.results[job.workflow] = False
        self.pending.clear()
        return True

    def _start_ready(self) -> None:
        changed = True
        while changed:
            changed = False
            for job in list(self.pending):
                if any(n not in self.results for n in job.needs):
                    continue
                failed = [n for n in job.needs if not self.results[n]]
                if failed:
                    self.pending.remove(job)
                    self.results[job.workflow] = False
                    self.skip(job, f"not run: {failed[0]} did not succeed")
                    changed = True
                    continue
                if len(self._running) >= self.limit or not self.admit(job, self.running):
                    continue
                self.pending.remove(job)
                self._running[self._pool.submit(self.run_job, job)] = job
                changed = True
