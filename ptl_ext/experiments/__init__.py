"""Experiments: several runs built from library objects and compared.

``study`` (:class:`~ptl_ext.experiments.study.StudyConfig`, :func:`~ptl_ext.experiments.study.run_study`): the
transfer study on real images (Fashion-MNIST) from real ImageNet-trained weights (MobileNetV2), every method
against a strong fine-tuning baseline. An experiment never goes through the command line's parser; it sits on
``train``, ``models`` and ``data``, and the ``ptl`` command line calls it.
"""
