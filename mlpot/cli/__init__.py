"""The ``mlpot`` command line (see :mod:`mlpot.cli.main`)."""
