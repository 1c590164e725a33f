"""Experiments: several runs built from :class:`~ptl_ext.runs.RunSpec` objects and compared.

``demo`` (:class:`~ptl_ext.experiments.demo.DemoConfig`, :func:`~ptl_ext.experiments.demo.run_demo`): a
transfer experiment on synthetic data, with its data cache (``cache``, ``demo_data``), rows (``demo_rows``),
statistics (``demo_stats``) and a BatchNorm probe (``demo_probe``). An experiment builds its runs with
:func:`ptl_ext.runs.build_spec` and runs them through :mod:`ptl_ext.runs`; it never goes through the command
line's parser. Sits on ``runs`` (and below); the ``ptl`` command line calls it. A new experiment is a module
here with its settings dataclass and a ``run_...`` function, and its command in :mod:`ptl_ext.cli`.
"""
