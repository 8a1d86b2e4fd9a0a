"""The benchmarks: scripts that measure speed, memory and accuracy, and their results (``results/``).

Not installed with the package. Run a script from the repository root as a module of this package, e.g.
``python -m benchmarks.involution_op --help``; ``bash benchmarks/gpu_suite.sh`` runs the GPU measurements.

Every script takes its flags from one vocabulary (``flags.py``) and writes one result format (``record.py``: device,
versions, date, command, commit, options, rows) to ``--output`` (default ``benchmarks/results``). The other modules
are what the scripts share: ``aggregation.py`` (the involution aggregation's implementations and RedNet-50's layer
shapes), ``bound.py`` (the command of the scripts that make part of a model free), ``profiling.py`` (profiles of
the harness's step), ``saved_memory.py`` (what autograd saves for the backward pass). They use only public names
of ``adaptconv``.
"""
