"""The ``ringfence`` command line: one module per subcommand, built into a table by :mod:`ringfence.cli.main`."""
