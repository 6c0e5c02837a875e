import sys

from .memory import bound_malloc

bound_malloc()  # before the first large buffer: see memory.py

from .cli import main  # noqa: E402

sys.exit(main())
