"""A remote daemon over ssh:// behind a link shaped to 100 Mbit: what a run costs when every byte of code
crosses a slow link, and that a run with nothing changed sends nothing (issue 19).

The daemon is the docker-in-docker one the remote tests use (tests/dind_daemon.py), reached over ssh://
with a key made for the run and an ssh wrapper on PATH (~/.ssh is never touched). Its link is shaped
with `tc ... tbf rate 100mbit` in both directions: on the container's eth0 (daemon -> client) and on
its host-side veth (client -> daemon: code uploads; tbf on eth0 shapes only what leaves it). The rate
is checked by timing a known transfer each way over plain TCP before and after shaping, and over ssh
after (what the ssh:// transport itself reaches on this machine's CPUs).

Every row is a command as a user types it, timed as a median, the rows interleaved round by round
(the machine is shared and its load drifts), each as a ratio against `docker -H ssh://... run --rm IMAGE
bash -c 'echo hello'` measured in the same rounds:

- a small repository: `dtrun run hello --no-cache`;
- the same plus one untracked 200 MB file: the first run (the daemon holds none of the repository's code
  and the digest index is gone) and a later run with nothing changed;
- the floor for shipping that repository by hand: `tar c . | docker -H ssh://... cp - C:/tmp` (/tmp: the
  base image has no /workspace for `docker cp` to land in; `.git` left out, as dtrun leaves it out).

    python benchmarks/remote.py [--repeat 5] [--big-mb 200] [--rate 100mbit]

Everything it creates carries the label `dtrun-bench=<run id>` or this run's store; the daemon's
container (and with it everything inside) is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import BASE_IMAGE
from _measure import Sample, Summary, machine, measure, shell
from repo_scale import add_big_untracked, make_repo

from tests.dind_daemon import RemoteDaemon, remote_daemon

RUN_ID = uuid.uuid4().hex[:8]
LABELS = {"dtrun-bench": RUN_ID}
PROBE_MB = 24
TBF = "tbf rate {rate} burst 32kbit latency 400ms"


def shape(daemon: RemoteDaemon, host_client: Any, rate: str) -> None:
    """tbf on the container's eth0 (its egress: daemon -> client) and on the host-side peer of that
    veth (its egress is the container's ingress: client -> daemon). Both go with the container."""
    tbf = TBF.format(rate=rate)
    code, out = daemon.container.exec_run(["sh", "-c", f"tc qdisc add dev eth0 root {tbf} && "
                                                       "cat /sys/class/net/eth0/iflink"])
    if code != 0:
        raise SystemExit(f"shaping the daemon's eth0 failed: {out.decode(errors='replace')}")
    peer = out.decode().split()[-1]
    # the host's side, from a throwaway container in the host's network (iproute2 from the dind image:
    # nothing needed on the host itself)
    script = (f'for d in /sys/class/net/*; do [ "$(cat "$d/ifindex")" = {peer} ] && '
              f'exec tc qdisc add dev "${{d##*/}}" root {tbf}; done; echo "no interface {peer}" >&2; exit 1')
    host_client.containers.run(daemon.container.image.id, ["-c", script], entrypoint="sh", remove=True,
                               network_mode="host", cap_add=["NET_ADMIN"], labels=LABELS)


PROBE_PORT = 9000
# In the daemon's container: a TCP sink ("u" + bytes until EOF, answered with one byte) and source
# ("d": PROBE_MB MiB, then EOF). Raw TCP, so the rate is the link's, not ssh's ciphers' on a busy CPU.
PROBE_SERVER = f"""
import socket
server = socket.create_server(("0.0.0.0", {PROBE_PORT}))
block = bytes(1 << 20)
while True:
    conn, _ = server.accept()
    with conn:
        if conn.recv(1) == b"u":
            while conn.recv(1 << 20):
                pass
            conn.sendall(b"k")
        else:
            for _ in range({PROBE_MB}):
                conn.sendall(block)
"""


def start_probe_server(daemon: RemoteDaemon) -> str:
    """The probe server in the daemon's container; returns the container's address on the bridge."""
    daemon.container.exec_run(["python3", "-c", PROBE_SERVER], detach=True)
    daemon.container.reload()
    return str(daemon.container.attrs["NetworkSettings"]["IPAddress"])


def tcp_rate(address: str) -> tuple[float, float]:
    """Mbit/s up (client -> daemon) and down, PROBE_MB MiB each way over the container's own link."""
    import socket

    block = bytes(1 << 20)
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = socket.create_connection((address, PROBE_PORT), timeout=120)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        start = time.perf_counter()
        conn.sendall(b"u")
        for _ in range(PROBE_MB):
            conn.sendall(block)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)
        up = time.perf_counter() - start
    with socket.create_connection((address, PROBE_PORT), timeout=120) as conn:
        start = time.perf_counter()
        conn.sendall(b"d")
        while conn.recv(1 << 20):
            pass
        down = time.perf_counter() - start
    return mbit(up), mbit(down)


def ssh_rate(daemon: RemoteDaemon, env: dict[str, str], payload: Path) -> tuple[float, float]:
    """The same over ssh (what the ssh:// transport can reach here: its ciphers share the busy CPUs),
    less an empty ssh round trip."""
    url = urlsplit(daemon.ssh)
    ssh = f"ssh -p {url.port} {url.username}@{url.hostname}"
    nothing = min(shell(f"{ssh} true", env=env).wall for _ in range(2))
    up = shell(f"{ssh} 'cat > /dev/null' < {payload}", env=env).wall - nothing
    down = shell(f"{ssh} 'head -c {PROBE_MB * 2**20} /dev/zero' > /dev/null", env=env).wall - nothing
    return mbit(up), mbit(down)


def mbit(seconds: float) -> float:
    return PROBE_MB * 2**20 * 8 / 1e6 / max(seconds, 1e-3)


class Client:
    """dtrun and the docker CLI as a user on this machine would run them against the remote daemon."""

    def __init__(self, daemon: RemoteDaemon, base: Path) -> None:
        self.daemon = daemon
        self.data = base / "data"
        self.docker = [shutil.which("docker") or "docker", "-H", daemon.ssh]
        common = {**os.environ, **daemon.ssh_env, "DOCKER_HOST": daemon.ssh, "NO_COLOR": "1"}
        for name in ("DTRUN_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            common.pop(name, None)
        self.docker_env = common
        self.stores = {name: base / f"store-{name}" for name in ("small", "big")}
        self.envs = {name: {**common, "DTRUN_STORE": str(store), "DTRUN_DATA_DIR": str(self.data),
                            "XDG_CONFIG_HOME": str(base / "config"), "DTRUN_BASE_IMAGE": BASE_IMAGE}
                     for name, store in self.stores.items()}

    def run(self, which: str, root: Path, *args: str) -> Sample:
        return measure([sys.executable, "-m", "dtrun", "run", "hello", *args], env=self.envs[which], cwd=root)

    def run_output(self, which: str, root: Path) -> str:
        proc = subprocess.run([sys.executable, "-m", "dtrun", "run", "hello", "--no-cache"], env=self.envs[which],
                              cwd=root, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"dtrun run failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc.stdout + proc.stderr

    def raw(self, image: str) -> Sample:
        return measure([*self.docker, "run", "--rm", "--label", f"dtrun-bench={RUN_ID}", image, "bash", "-c",
                        "echo hello"], env=self.docker_env)

    def floor_copy(self, root: Path) -> Sample:
        """`tar c . | docker cp - C:/tmp` into a created (never started) container of the base image."""
        created = subprocess.run([*self.docker, "create", "--label", f"dtrun-bench={RUN_ID}", BASE_IMAGE, "true"],
                                 env=self.docker_env, check=True, capture_output=True, text=True).stdout.strip()
        try:
            docker = " ".join(self.docker)
            return shell(f"tar c --exclude=.git . | {docker} cp - {created}:/tmp", env=self.docker_env, cwd=root)
        finally:
            subprocess.run([*self.docker, "rm", "-f", created], env=self.docker_env, capture_output=True)

    def forget_code(self, which: str) -> None:
        """As if the daemon had never seen this store's repository: its code volumes and their anchors
        go, and so does the client's digest index (so the first run hashes, too)."""
        label = store_label(self.stores[which])
        client = self.daemon.client
        for volume in client.volumes.list(filters={"label": f"dev.dtrun.store={label}"}):
            if volume.name.startswith("dtrun-code-"):
                for container in client.containers.list(all=True, filters={"name": f"{volume.name}-anchor"}):
                    container.remove(force=True)
                volume.remove(force=True)
        shutil.rmtree(self.data / "code-index", ignore_errors=True)


def store_label(store: Path) -> str:
    import hashlib

    return hashlib.sha256(str(store).encode()).hexdigest()[:12]


def job_image(store: Path) -> str:
    import json

    return str(json.loads(next(store.glob("repos/**/jobs/*/job.json")).read_text())["image"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big-mb", type=int, default=200, help="size of the untracked file, MB")
    parser.add_argument("--rate", default="100mbit", help="tc rate of the shaped link")
    args = parser.parse_args()
    import docker

    # a TERM (report.py or CI stopping it) unwinds like Ctrl+C, through the clean-up below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    host_client = docker.from_env()
    base = Path(tempfile.mkdtemp(prefix="dtrun-bench-remote-"))
    try:
        small, big = make_repo(base, "small", 0), make_repo(base, "big", 0)
        add_big_untracked(big, args.big_mb * 2**20)
        payload = base / "probe.bin"
        with payload.open("wb") as handle:  # by the MiB: this process's peak memory is its children's floor
            for _ in range(PROBE_MB):
                handle.write(os.urandom(2**20))
        workdir = base / "dind"
        workdir.mkdir()
        with remote_daemon(host_client, BASE_IMAGE, name=f"dtrun-bench-dind-{RUN_ID}", labels=LABELS,
                           workdir=workdir) as daemon:
            client = Client(daemon, base)
            client.run("small", small)  # builds the job's image on the daemon, probes it, before shaping
            image = job_image(client.stores["small"])
            client.raw(image)
            address = start_probe_server(daemon)
            unshaped = tcp_rate(address)
            shape(daemon, host_client, args.rate)
            shaped = tcp_rate(address)
            over_ssh = ssh_rate(daemon, client.docker_env, payload)
            samples = measure_rounds(client, small, big, image, args.repeat)
            # what dtrun says it sent: one more first run, then one more later run
            client.forget_code("big")
            sent = {when: [line.strip() for line in client.run_output("big", big).splitlines() if "sent " in line]
                    for when in ("first", "later")}
        report(args, (unshaped, shaped, over_ssh), samples, sent)
    finally:
        subprocess.run(f"docker ps -aq --filter label=dtrun-bench={RUN_ID} | xargs -r docker rm -f", shell=True,
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


ROWS = ("raw", "floor", "small", "first", "later")


def measure_rounds(client: Client, small: Path, big: Path, image: str, n: int) -> dict[str, list[Sample]]:
    """n rounds: the two runs that write 200 MB on the daemon first, then a `sync` (their write-back
    should not land on whichever light row comes next), then the light rows twice, forwards and
    backwards, so that drift in the load within a round weighs on each alike (ABBA)."""
    samples: dict[str, list[Sample]] = {name: [] for name in ROWS}
    light = {"raw": lambda: client.raw(image), "small": lambda: client.run("small", small, "--no-cache"),
             "later": lambda: client.run("big", big, "--no-cache")}
    for _ in range(n):
        client.forget_code("big")
        samples["first"].append(client.run("big", big, "--no-cache"))
        samples["floor"].append(client.floor_copy(big))
        client.daemon.container.exec_run(["sync"])
        for name in [*light, *reversed(light)]:
            samples[name].append(light[name]())
    return samples


def report(args: argparse.Namespace, rates: tuple[tuple[float, float], ...], samples: dict[str, list[Sample]],
           sent: dict[str, list[str]]) -> None:
    (tcp_up, tcp_down), (up, down), (ssh_up, ssh_down) = rates
    rows = {name: Summary.of(values) for name, values in samples.items()}
    # the later run over the small repository's, pair by pair (each pair ran back to back)
    pairs = zip(samples["later"], samples["small"], strict=True)
    added = statistics.median(later.wall - small.wall for later, small in pairs)
    print(f"machine: {machine()}\n")
    print(f"link: ssh:// to a docker-in-docker daemon, `{TBF.format(rate=args.rate)}` on both directions; "
          f"measured with {PROBE_MB} MiB each way over TCP: {tcp_up:.0f} Mbit/s up (client -> daemon), {tcp_down:.0f} "
          f"down before shaping; {up:.0f} up, {down:.0f} down after; over ssh after: {ssh_up:.0f} up, "
          f"{ssh_down:.0f} down. Medians of {args.repeat} rounds (the light rows twice a round), interleaved.\n")
    raw, floor, small = rows["raw"], rows["floor"], rows["small"]
    mb = args.big_mb
    print("| case | wall | CPU | peak memory | ratio |\n|---|---|---|---|---|")
    lines = [
        ("`docker -H ssh://… run --rm IMAGE bash -c 'echo hello'`", raw, "1.00x (the reference)"),
        (f"`tar c . \\| docker -H ssh://… cp - C:/tmp`, {mb} MB repository (floor)", floor,
         f"{floor.wall / raw.wall:.2f}x docker run"),
        ("small repository: `dtrun run hello --no-cache`", small, f"{small.wall / raw.wall:.2f}x docker run"),
        (f"+{mb} MB untracked: first run", rows["first"],
         f"{rows['first'].wall / raw.wall:.2f}x docker run; {rows['first'].wall / floor.wall:.2f}x tar\\|docker cp"),
        (f"+{mb} MB untracked: later run, nothing changed", rows["later"],
         f"{rows['later'].wall / raw.wall:.2f}x docker run; {added:+.2f} s over the small repository "
         "(median of the pairs' differences; target ≤ +0.20 s)"),
    ]
    for label, s, ratio in lines:
        print(f"| {label} | {s.wall:.2f} s | {s.cpu:.2f} s | {s.peak_mb:.0f} MB | {ratio} |")
    said = "; ".join(f"{when} run: {'; '.join(told) or 'nothing (no `sent` line)'}" for when, told in sent.items())
    print(f"\nwhat dtrun said it sent, one more first and later run: {said}")


if __name__ == "__main__":
    main()
