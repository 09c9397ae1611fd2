"""The two shell scripts a helper container runs on a code volume (any image with a POSIX shell:
busybox or GNU userland): the copy fallback for a job's view, and prune. Layout: `volume.py`."""

from __future__ import annotations

from dtrun.code.volume import CODE_MOUNT, HEAD, LAYERS, VIEW_MOUNT


def _fill(script: str) -> str:
    return script.replace("@CODE@", CODE_MOUNT).replace("@VIEW@", VIEW_MOUNT).replace(
        "@LAYERS@", LAYERS).replace("@HEAD@", HEAD)


#: argv: a tree's layers, bottom (full) first; the code volume at CODE_MOUNT (read only), the job's
#: volume at VIEW_MOUNT; used where overlay volumes cannot be mounted. Replays the layers as overlayfs
#: would show them: before a layer is copied, every view path the layer replaces or whites out is
#: removed (so `cp` never writes through a file or link the view already holds); the whiteouts the copy
#: brings along are removed after it. Hard links inside the tree must not survive the copy (two paths
#: with the same bytes would be one file a job could write through): GNU cp is told not to keep them;
#: busybox cp keeps them, so any left are broken at the end.
COPY_VIEW_SCRIPT = _fill(r"""set -eu
for layer; do
  test -d "@CODE@/@LAYERS@/$layer" || { echo "layer $layer is not in the code volume" >&2; exit 3; }
done
if cp --reflink=auto --version >/dev/null 2>&1; then gnu=1; else gnu=; fi
first=1
for layer; do
  src="@CODE@/@LAYERS@/$layer"
  if [ -z "$first" ]; then
    find "$src" -mindepth 1 -exec sh -c '
      src=$1; shift
      for p; do
        t="@VIEW@/${p#"$src"/}"
        if [ -d "$p" ] && [ ! -L "$p" ] && [ -d "$t" ] && [ ! -L "$t" ]; then continue; fi
        rm -rf "$t"
      done' sh "$src" {} +
  fi
  if [ -n "$gnu" ]; then
    cp -R --preserve=mode,timestamps --reflink=auto "$src/." @VIEW@/
  else
    cp -R -p "$src/." @VIEW@/
  fi
  [ -n "$first" ] || find @VIEW@ -type c -exec rm -f {} +
  first=
done
find @VIEW@ -type f -links +1 -exec sh -c \
  'for f; do cp -p "$f" "$f.dtrun-tmp" && mv -f "$f.dtrun-tmp" "$f"; done' sh {} +
""")

#: argv: how many of the most recently landed trees to keep (their markers' mtime), then what else to
#: keep: tree ids (their markers and layers) and layer names (those job views use); the code volume at
#: CODE_MOUNT. The latest tree (HEAD's layers) is always kept: the next put stacks on it. Drops every
#: other marker, then every layer no kept tree or view uses, if a dropped tree used it or it is over an
#: hour old (a younger one no marker names may be a put in flight), then the objects nothing links to
#: any more (link count 1, asked again right before each removal: an object a concurrent put links
#: again after find listed it stays). Folders of the earlier layout (one hard-link farm
#: per tree under trees/) go once over an hour old. Policy: `dtrun.code.retention`.
PRUNE_SCRIPT = _fill(r"""set -eu
cd @CODE@
newest=$1
shift
keep=" $* "
head=$(head -c 4096 @HEAD@ 2>/dev/null | sed -n 's/^{"layers":"\([0-9a-f:]*\)".*/\1/p') || head=
live=" $(echo "$head" | tr ':' ' ') "
recent=" "
if [ "$newest" -gt 0 ] && [ -d trees ]; then
  recent=" $(cd trees && ls -t | sed -n 's/\.layers$//p' | head -n "$newest" | tr '\n' ' ') "
fi
dropped=" "
for marker in trees/*.layers; do
  [ -e "$marker" ] || continue
  id=$(basename "$marker" .layers)
  chain=$(cat "$marker")
  case "$keep$recent" in *" $id "*) live="$live$(echo "$chain" | tr ':' ' ') "; continue ;; esac
  [ "$chain" = "$head" ] && continue
  dropped="$dropped$(echo "$chain" | tr ':' ' ') "
  rm -f "$marker"
done
old=" $(find @LAYERS@ -mindepth 1 -maxdepth 1 -type d -mmin +60 2>/dev/null | sed 's|.*/||' | tr '\n' ' ') "
for dir in @LAYERS@/*/; do
  [ -d "$dir" ] || continue
  name=$(basename "$dir")
  case "$live$keep" in *" $name "*) continue ;; esac
  case "$dropped$old" in *" $name "*) rm -rf "$dir" ;; esac
done
find trees -mindepth 1 -maxdepth 1 -mmin +60 ! -name '*.layers' -exec rm -rf {} + 2>/dev/null || true
find objects -type f -links 1 -exec sh -c \
  'for f; do [ "$(stat -c %h "$f" 2>/dev/null)" = 1 ] && rm -f "$f"; done; true' sh {} + 2>/dev/null || true
""")
