"""The library's data-set loops, below both faces (the ``gradlens`` command and the dashboard).

* :mod:`methods.pipeline.evaluate` — :func:`~methods.pipeline.evaluate.evaluate`: faithfulness and
  localization of methods on a data set (workers in ``evaluate_work``, samples in ``sources``,
  the summary in ``summary``);
* :mod:`methods.pipeline.batch` — :func:`~methods.pipeline.batch.run_batch`: the views, raw maps and
  a resumable manifest for a folder (workers in ``batch_worker``, files in ``batch_files``, the
  manifest in ``manifest``, an annotated data set's images and labels in ``batch_dataset``);
* :mod:`methods.pipeline.objects` — :func:`~methods.pipeline.objects.object_rows`: one row per
  object of a detector's or segmenter's image (its maps, localization and faithfulness);
* :mod:`methods.pipeline.engines` — where the work runs: a local process pool or Ray;
* :mod:`methods.pipeline.drift` — :func:`~methods.pipeline.drift.drift`: explanation drift between two
  checkpoints of one model (the two sides in ``drift_models``, the report file in ``drift_report``);
* :mod:`methods.pipeline.common` — the arguments both loops share and every worker's set-up.

Nothing here parses a command line (that is :mod:`methods.cli`) or imports the dashboard.
"""
