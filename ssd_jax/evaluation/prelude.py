"""LiveCodeBench's import prelude, bound lazily: only the names a program can refer to.

LiveCodeBench runs every program after `from string import *`, `from collections import *`, …,
`import json`, `sys.setrecursionlimit(50000)` (below, verbatim). Importing those 18 modules is
most of a fresh interpreter's start-up cost, so each program instead gets the same statements
restricted to the identifiers that occur anywhere in its text (a superset of the names it
can look up, strings and comments included): every name it uses is bound exactly as
LiveCodeBench binds it, modules it never names are not imported. Only a program that builds
a name at run time (`globals()["sq" + "rt"]`) can tell the difference.

Which names `from M import *` binds depends on the sandbox's Python version, so the table
is read once from that interpreter, inside the sandbox.
"""

from __future__ import annotations

import functools
import json
import keyword
import re

from ssd_jax.evaluation.sandbox.isolation import Isolation
from ssd_jax.evaluation.sandbox.limits import Limits

LCB_PRELUDE_MODULES = (
    "string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random", "statistics",
    "itertools", "functools", "operator", "io", "sys", "json", "builtins", "typing",
)
LCB_PRELUDE = (  # LiveCodeBench's `import_string`, verbatim
    "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\n"
    "from heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\n"
    "from random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\n"
    "from operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\n"
    "from builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\n"
    "import collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\n"
    "import statistics\nimport itertools\nimport functools\nimport operator\nimport io\nimport sys\n"
    "import json\nsys.setrecursionlimit(50000)\n"
)
_IDENTIFIER = re.compile(r"[^\W\d]\w*")
_EXPORTS_PROGRAM = (
    "import json\nexports = {}\nfor name in %r:\n    module = __import__(name)\n"
    "    exports[name] = sorted(getattr(module, '__all__', None) or [n for n in dir(module) if not n.startswith('_')])\n"
    "print(json.dumps(exports))" % (LCB_PRELUDE_MODULES,)
)


@functools.lru_cache(maxsize=None)
def star_exports(isolation: Isolation) -> dict[str, frozenset[str]]:
    """module → the names `from module import *` binds, in the sandbox's interpreter."""
    from ssd_jax.evaluation.sandbox import run

    result = run(_EXPORTS_PROGRAM, limits=Limits(timeout_s=30), allow_unsandboxed=not isolation.sandboxed,
                 python=isolation.python)
    if result.status != "ok":
        raise RuntimeError(f"could not list the prelude modules' names in the sandbox: {result.detail} {result.stderr}")
    return {module: frozenset(names) for module, names in json.loads(result.stdout).items()}


def prelude_for(code: str, isolation: Isolation) -> str:
    """LiveCodeBench's prelude restricted to the identifiers occurring in `code`."""
    used = {name for name in _IDENTIFIER.findall(code) if not keyword.iskeyword(name)}  # None, True, …
    exports = star_exports(isolation)
    lines = []
    for module in LCB_PRELUDE_MODULES:
        names = sorted(used & exports[module])
        if names:
            lines.append(f"from {module} import {', '.join(names)}")
    lines += [f"import {module}" for module in LCB_PRELUDE_MODULES
              if module in used and module not in ("builtins", "typing")]
    lines.append("__import__('sys').setrecursionlimit(50000)")
    return "\n".join(lines) + "\n"
