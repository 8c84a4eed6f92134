"""The qbench command line: one module per subcommand.

Each module defines ``add_parser(subparsers)`` (which sets ``func``) and a ``run(args)`` that
returns the exit status. ``main`` turns a QBenchError into one sentence on stderr and exit 2.
"""
