"""dtrun/python: run INPUT_SCRIPT (inline) or INPUT_FILE with the JSON list INPUT_ARGS as sys.argv[1:]."""

import json
import os
import runpy
import sys


def main() -> int:
    script = os.environ.get("INPUT_SCRIPT", "")
    path = os.environ.get("INPUT_FILE", "")
    args = [str(a) for a in json.loads(os.environ.get("INPUT_ARGS") or "[]")]
    if bool(script) == bool(path):
        print("dtrun/python: give exactly one of the inputs `script` or `file`", file=sys.stderr)
        return 2
    if path:
        sys.argv = [path, *args]
        runpy.run_path(path, run_name="__main__")
    else:
        sys.argv = ["<script>", *args]
        exec(compile(script, "<script>", "exec"), {"__name__": "__main__"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
