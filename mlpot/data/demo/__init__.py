"""Demo dataset and config for `mlpot train --demo` (see make_demo.py)."""
