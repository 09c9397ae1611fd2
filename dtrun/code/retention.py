"""How long a code volume keeps a tree: the policy that bounds a repository's code volume on the daemon.

Every run that changes a file lands a new tree (a layer of what changed and a marker). Kept forever, a
researcher iterating for weeks in one repository would fill the daemon's disk with old copies of their
code (a 200 MB data file edited now and then is 200 MB per edit). An old tree buys little: a run whose
tree was pruned sends what changed since the volume's latest tree, as it would anyway. So:

- **What is kept**: the `code_trees` most recently landed trees (setting, default `DEFAULT_TREES`),
  HEAD's tree (the next put stacks on it), every tree a living job view uses (its overlay `lowerdir`),
  every tree a run in flight holds (a *hold*, below), the tree of the run that prunes, and every layer
  those stack on. The objects only dropped layers used go with them.
- **When**: a run that lands a new tree counts it (per client and anchor, `coderecord.landed`); once a
  client has landed K trees since the last prune, its run prunes. So a volume holds at most 2K trees
  besides those in use (K after a prune, K more before the next), and one changed run in K pays for a
  prune: 0.11 s of client time (0.18 s on a busy host), nearly all of it the helper container's start,
  overlapping the job (`prune_code(wait=False)`, median of 7). Interleaved medians of 11
  `dtrun run hello --no-cache` with a file changed before each, on this 2-core host: 0.428 s before
  this policy, 0.432 s with it (K=8); 0.484 s with K=1, a prune on every changed run. With nothing
  changed: 0.405 s before, 0.403 s after (the hold costs 3 ms, made at the same time as the put, and
  2 ms to release). A run that sent nothing never prunes.
- **Off the run's path**: the prune starts on a thread as soon as the put is done, overlapping the
  job; the client only removes the anchor, lists views and holds, and creates and starts a helper
  container on the daemon that does the deleting (AutoRemove: nobody waits for it to finish; the run's
  end waits only for those calls). API calls only, no shared file system: a remote daemon gets the same.
- **A run in flight** holds its tree from its put to its end: a labelled, empty volume
  (`dtrun-hold-<id>`, labels `HOLD_LABEL=<code volume>`, `HOLD_TREE=<tree id>`), created at the same
  time as the put (no added round trip) and removed when the run returns. A job's view exists only while
  the job runs; the hold covers the gaps between a run's jobs (a later job's image build, a flow's
  waiting jobs) and another client's recorded tree (a tree found complete long ago). A hold older than
  `HOLD_STALE_S` is a client that died without removing it: ignored and removed by the next prune. A
  hold carries its run's name (`dev.dtrun.run`), so the command that settles a run whose client died
  (`engine/reconcile.py`) releases it at once.
- **Clients' records** (`coderecord`) name trees without asking the daemon; a prune removes the anchor
  first, so every client's records lapse with the old anchor id, and a put in flight on the old anchor
  fails with NotFound and is made again on the new one. The pruning client carries its own record of
  the kept tree to the new anchor: its next run still sends only what changed, with no extra read.
  Another client's next put reads the volume's HEAD (kept) and sends what changed since it: ~0.2 s
  more, once after each prune.

Known limits: "most recently landed" is a marker's time, not the last use of its tree (a tree landed
long ago and used again today is kept only while a run holds it or a view uses it; sent again, it costs
what changed since HEAD). A hold is made at the same time as the put, not before it: a prune by another
client that lists holds in the few milliseconds between this put finding an old tree in its record and
the hold's creation could drop that tree, and the job's view would then fail to mount, naming the layer.
A client killed mid-run leaves its hold, which keeps one tree until a later command settles its run
(reconcile), at most `HOLD_STALE_S`.
"""

from __future__ import annotations

from dtrun.errors import DtrunError

#: Trees a code volume keeps besides those in use (`code_trees` setting).
DEFAULT_TREES = 8
#: On a hold volume: the code volume whose tree it holds, and the tree (a manifest digest).
HOLD_LABEL = "dev.dtrun.code.hold"
HOLD_TREE = "dev.dtrun.code.tree"
HOLD_PREFIX = "dtrun-hold-"
#: A hold this old is a client that died without removing it (a run longer than this between two of its
#: jobs, with another client pruning meanwhile, could lose its tree: its next job then fails to mount).
HOLD_STALE_S = 7 * 86400


def kept_trees(setting: str | None) -> int:
    """The `code_trees` setting as a number of trees; 0 turns automatic pruning off."""
    if setting is None or not setting.strip():
        return DEFAULT_TREES
    try:
        value = int(setting)
    except ValueError:
        value = -1
    if value < 0:
        raise DtrunError(f"code_trees must be a whole number of trees (0: never pruned), not '{setting}'",
                         hint=f"dtrun config set code_trees {DEFAULT_TREES}")
    return value


def prune_every(trees: int) -> int:
    """How many trees a client lands between two prunes of a volume that keeps `trees` (0: never)."""
    return max(0, trees)


def due(trees: int, landed: int) -> bool:
    """Whether a client that has landed `landed` trees behind the volume's anchor prunes now."""
    every = prune_every(trees)
    return every > 0 and landed >= every
