"""segcore-train: the main job for segcore models — data, training, evaluation, prediction.

* data: ``scan(root, classes)`` validates an ``images/`` + ``masks/`` folder up front
  (``DataReport``, or ``DataValidationError`` listing every problem with its file and fix);
  ``SegmentationFolder``; ``build_train_transform`` / ``build_eval_transform`` /
  ``resolve_normalization``; ``write_synthetic_dataset`` (``segcore data synth``);
* training: ``train(config)`` (``segcore train CONFIG``; torchrun for DDP), ``load_config``,
  ``apply_overrides``, checkpoints that resume exactly (``save_checkpoint``); the host's
  settings (``keep_freed_memory``, ``resolve_amp`` for ``train.amp = "auto"``);
* evaluation: ``evaluate(model, dataset, classes=...)`` (``segcore evaluate``),
  ``confusion_matrix``, ``scores_from_confusion``; plots (``plot_curves``...);
* prediction: ``predict_tiled(model, image, tile=512, overlap=0.25, tta=...)``,
  ``predict_file`` (``segcore predict``), streaming huge images band by band.

Example::

    from segcore_train import train, load_config
    result = train(load_config("run.toml"))
    print(result.run_dir, result.best_metric, result.best_value)

The names are imported on first use, so that discovering the plugin (which imports this
package before ``segcore_train.plugin``) imports neither torch nor torchvision.
"""

from __future__ import annotations

from segcore.specs import lazy_exports

_EXPORTS = {
    "AugmentConfig": "segcore_train.augment",
    "DataError": "segcore_train.errors",
    "DataProblem": "segcore_train.errors",
    "DataReport": "segcore_train.data",
    "DataValidationError": "segcore_train.errors",
    "Normalization": "segcore_train.augment",
    "Sample": "segcore_train.data",
    "SegmentationFolder": "segcore_train.data",
    "SegmentationTransform": "segcore_train.augment",
    "SyntheticSample": "segcore_train.synth",
    "build_eval_transform": "segcore_train.augment",
    "build_train_transform": "segcore_train.augment",
    "find_samples": "segcore_train.data",
    "image_to_tensor": "segcore_train.data",
    "read_class_names": "segcore_train.data",
    "read_image": "segcore_train.data",
    "read_mask": "segcore_train.data",
    "read_splits": "segcore_train.data",
    "render_sample": "segcore_train.synth",
    "open_image": "segcore_train.predict",
    "parse_tta": "segcore_train.predict",
    "predict_file": "segcore_train.predict",
    "predict_tiled": "segcore_train.predict",
    "predict_to_mask": "segcore_train.predict",
    "resolve_normalization": "segcore_train.augment",
    "scan": "segcore_train.data",
    "split_samples": "segcore_train.data",
    "write_synthetic_dataset": "segcore_train.synth",
    "EvaluationResult": "segcore_train.evaluate",
    "confusion_matrix": "segcore_train.evaluate",
    "evaluate": "segcore_train.evaluate",
    "multilabel_confusion": "segcore_train.evaluate",
    "scores_from_confusion": "segcore_train.evaluate",
    "palette": "segcore_train.plots",
    "plot_confusion": "segcore_train.plots",
    "plot_curves": "segcore_train.plots",
    "plot_predictions": "segcore_train.plots",
    "CheckpointError": "segcore_train.errors",
    "LossTerm": "segcore_train.config",
    "RunConfig": "segcore_train.config",
    "StepInfo": "segcore_train.trainer",
    "TrainConfig": "segcore_train.config",
    "TrainResult": "segcore_train.trainer",
    "TrainStep": "segcore_train.trainer",
    "apply_overrides": "segcore_train.config",
    "config_reference_markdown": "segcore_train.config",
    "dump_config": "segcore_train.config",
    "load_checkpoint": "segcore_train.checkpoint",
    "load_config": "segcore_train.config",
    "save_checkpoint": "segcore_train.checkpoint",
    "train": "segcore_train.trainer",
    "keep_freed_memory": "segcore_train.host",
    "native_bf16": "segcore_train.host",
    "resolve_amp": "segcore_train.host",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
