"""Experiments: several runs built from :class:`~ptl_ext.runs.RunSpec` objects (or library objects) and compared.

``demo`` (:class:`~ptl_ext.experiments.demo.DemoConfig`, :func:`~ptl_ext.experiments.demo.run_demo`): a
transfer experiment on synthetic data, with its data cache (``cache``, ``demo_data``), rows (``demo_rows``),
statistics (``demo_stats``) and a BatchNorm probe (``demo_probe``). An experiment builds its runs with
:func:`ptl_ext.runs.build_spec` and runs them through :mod:`ptl_ext.runs`; it never goes through the command
line's parser. Sits on ``runs`` (and below); the ``ptl`` command line calls it. A new experiment is a module
here with its settings dataclass and a ``run_...`` function, and its command in :mod:`ptl_ext.cli`.

``study`` (:class:`~ptl_ext.experiments.study.StudyConfig`, :func:`~ptl_ext.experiments.study.run_study`): the
transfer study on real images (Fashion-MNIST) from real ImageNet-trained weights (MobileNetV2), every method
against a strong fine-tuning baseline. Its runs are built from ``train``, ``models`` and ``data`` objects
directly (a custom split and per-epoch curves that ``ptl train`` has no options for): its settings
(``study_config``), data and networks (``study_data``) and paired comparisons (``study_stats``, on the demo's
t distribution in ``demo_stats``).
"""
