"""Benchmarks: ``chexp bench <name>``.

Each module has ``add_arguments(parser)`` and ``run(args) -> exit status``. It imports torch (and
whatever else is heavy) only when it runs: ``chexp bench --help`` imports every benchmark module.
The first line of its docstring is its summary in ``chexp bench --help``.
"""
