"""``python -m lpft_nb``: the error boundary goes up before anything heavy is imported.

`cli` imports only the standard library at its top; the commands import torch, pandas or papermill when
they run, inside `cli.main`'s boundary. Ctrl-C while `cli` itself loads is "interrupted" too.
"""

import sys

try:
    from .cli import main
except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
