"""Evaluation: confusion matrices, scores, ``evaluate`` and the ``segcore evaluate`` command."""

from __future__ import annotations

import io
import json

import pytest
import torch
from segcore_metrics import get_stats
from segcore_train import build_eval_transform, scan, write_synthetic_dataset
from segcore_train.augment import resolve_normalization
from segcore_train.errors import DataError
from segcore_train.evaluate import (
    EvaluationResult,
    confusion_matrix,
    evaluate,
    multilabel_confusion,
    scores_from_confusion,
)
from torch import nn

import segcore
from segcore import cli
from segcore.errors import InvalidOptionError, InvalidTargetError


# -- confusion matrices ------------------------------------------------------------------------
def test_confusion_matrix_of_a_hand_computed_example():
    targets = torch.tensor([[[0, 0, 1], [1, 2, 2]]])
    predictions = torch.tensor([[[0, 1, 1], [1, 2, 0]]])
    confusion = confusion_matrix(predictions, targets, classes=3)
    assert confusion.dtype == torch.int64
    assert confusion.tolist() == [[1, 1, 0],   # truth 0: once 0, once 1
                                  [0, 2, 0],   # truth 1: twice 1
                                  [1, 0, 1]]   # truth 2: once 0, once 2


def test_confusion_matrix_agrees_with_segcore_metrics_get_stats():
    generator = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 5, (3, 17, 23), generator=generator)
    predictions = torch.randint(0, 5, (3, 17, 23), generator=generator)
    targets[:, :3] = 255
    confusion = confusion_matrix(predictions, targets, classes=5, ignore_index=255)
    tp, fp, fn, _ = get_stats(predictions, targets, "multiclass", ignore_index=255,
                              num_classes=5)
    diagonal = confusion.diagonal()
    assert diagonal.tolist() == tp.sum(0).tolist()
    assert (confusion.sum(0) - diagonal).tolist() == fp.sum(0).tolist()
    assert (confusion.sum(1) - diagonal).tolist() == fn.sum(0).tolist()
    assert int(confusion.sum()) == 3 * 14 * 23  # the ignored rows are left out


def test_confusion_matrix_ignores_ignore_index_pixels_whatever_was_predicted():
    targets = torch.tensor([[0, 1, 255, 255]])
    predictions = torch.tensor([[0, 1, 1, 7]])  # 7 under an ignored pixel is not checked
    confusion = confusion_matrix(predictions, targets, classes=2, ignore_index=255)
    assert confusion.tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize(("predictions", "targets", "words"), [
    (torch.tensor([0, 1]), torch.tensor([0, 7]), "targets hold values 7 outside the classes 0..2"),
    (torch.tensor([0, 1]), torch.tensor([-1, 9]), "targets hold values -1, 9"),
    (torch.tensor([5, 1]), torch.tensor([0, 1]), "predictions hold values 5 outside"),
    (torch.tensor([0.0, 1.0]), torch.tensor([0, 1]), "take logits.argmax(1)"),
    (torch.tensor([0, 1, 2]), torch.tensor([0, 1]), "must have the same shape"),
])
def test_confusion_matrix_refuses_values_that_are_no_class(predictions, targets, words):
    with pytest.raises(InvalidTargetError) as error:
        confusion_matrix(predictions, targets, classes=3)
    assert words in str(error.value)


def test_confusion_matrix_suggests_ignore_index_for_255():
    with pytest.raises(InvalidTargetError, match="or ignore_index=<value>"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 255]), classes=2)


def test_multilabel_confusion_agrees_with_get_stats():
    generator = torch.Generator().manual_seed(1)
    targets = torch.randint(0, 2, (2, 3, 9, 11), generator=generator)
    predictions = torch.randint(0, 2, (2, 3, 9, 11), generator=generator)
    confusion = multilabel_confusion(predictions, targets.float())
    tp, fp, fn, tn = get_stats(predictions, targets, "multilabel")
    assert confusion.shape == (3, 2, 2)
    assert confusion[:, 1, 1].tolist() == tp.sum(0).tolist()
    assert confusion[:, 0, 1].tolist() == fp.sum(0).tolist()
    assert confusion[:, 1, 0].tolist() == fn.sum(0).tolist()
    assert confusion[:, 0, 0].tolist() == tn.sum(0).tolist()
    with pytest.raises(InvalidTargetError, match="0/1 per label, found 2"):
        multilabel_confusion(predictions * 2, targets)


# -- scores ------------------------------------------------------------------------------------
def test_scores_of_a_diagonal_matrix_are_all_one():
    scores = scores_from_confusion(torch.diag(torch.tensor([5, 7, 3])))
    for name in ("iou", "f1", "precision", "recall"):
        assert scores[name] == [1.0, 1.0, 1.0]
        assert scores[f"mean_{name}"] == 1.0
    assert scores["pixel_accuracy"] == 1.0 and scores["pixels"] == 15
    assert scores["support"] == [5, 7, 3]


def test_scores_of_a_hand_computed_matrix():
    # truth 0: 3 right, 1 as class 1; truth 1: 2 right; class 2 absent from both
    scores = scores_from_confusion(torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]]))
    assert scores["iou"][:2] == pytest.approx([3 / 4, 2 / 3])
    assert scores["f1"][:2] == pytest.approx([6 / 7, 4 / 5])
    assert scores["precision"][:2] == pytest.approx([1.0, 2 / 3])
    assert scores["recall"][:2] == pytest.approx([3 / 4, 1.0])
    # absent from truth and prediction: every score undefined, left out of the means
    assert [scores[name][2] for name in ("iou", "f1", "precision", "recall")] == [None] * 4
    assert scores["mean_iou"] == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert scores["pixel_accuracy"] == pytest.approx(5 / 6)


def test_scores_of_a_class_predicted_but_never_true():
    scores = scores_from_confusion(torch.tensor([[4, 2], [0, 0]]))
    assert scores["iou"][1] == 0.0 and scores["f1"][1] == 0.0  # false positives count
    assert scores["precision"][1] == 0.0
    assert scores["recall"][1] is None  # never true: recall undefined
    assert scores["mean_iou"] == pytest.approx((4 / 6 + 0.0) / 2)
    assert scores["mean_recall"] == pytest.approx(4 / 6)  # over class 0 only
    json.dumps(scores, allow_nan=False)  # no NaN anywhere


def test_scores_refuse_other_shapes():
    with pytest.raises(InvalidOptionError, match=r"\(K, K\) counts"):
        scores_from_confusion(torch.zeros(2, 3))
    with pytest.raises(InvalidOptionError, match="finite, >= 0"):
        scores_from_confusion(torch.tensor([[1, -2], [0, 1]]))


# -- evaluate ----------------------------------------------------------------------------------
class OneHotOfChannel0(nn.Module):
    """A "perfect" model: the image's first channel holds the class index; logits are its
    one-hot (times 10), so ``argmax`` returns the mask the image encodes."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hot = nn.functional.one_hot(x[:, 0].long().clamp(0, self.classes - 1), self.classes)
        return hot.permute(0, 3, 1, 2).float() * self.scale


class Pairs(torch.utils.data.Dataset):
    def __init__(self, pairs):
        self.pairs = pairs

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        return self.pairs[index]


def _encoded(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.stack([mask.float().clamp(max=3), torch.rand(mask.shape)])
    return image, mask


def test_a_perfect_model_scores_one_on_images_of_varied_sizes():
    generator = torch.Generator().manual_seed(0)
    masks = [torch.randint(0, 4, size, generator=generator)
             for size in ((20, 30), (20, 30), (33, 17), (20, 30), (8, 8))]
    masks[1][:2] = 255
    model = OneHotOfChannel0(4).train()
    result = evaluate(model, Pairs([_encoded(mask) for mask in masks]), classes=4,
                      batch_size=2, ignore_index=255,
                      class_names=["background", "a", "b", "c"])
    assert isinstance(result, EvaluationResult)
    assert result.images == 5 and model.training  # the mode is restored
    assert result.means == {"iou": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0}
    assert result.pixel_accuracy == 1.0
    assert int(result.confusion.sum()) == sum(int((m != 255).sum()) for m in masks)
    assert result.confusion.tolist() == torch.diag(result.confusion.diagonal()).tolist()


def test_a_wrong_model_scores_less_and_the_table_shows_it():
    masks = [torch.zeros(16, 16, dtype=torch.long), torch.ones(16, 16, dtype=torch.long)]
    shifted = [(torch.stack([(1 - mask).float()]), mask) for mask in masks]  # always wrong
    result = evaluate(OneHotOfChannel0(3), Pairs(shifted), classes=3)
    assert result.means["iou"] == 0.0 and result.pixel_accuracy == 0.0
    table = result.table()
    assert table.splitlines()[0].split() == ["class", "IoU", "F1", "precision", "recall",
                                             "pixels"]
    assert "n/a" in table  # class 2: absent from truth and prediction
    assert "pixel accuracy 0.0000 over 2 images (512 pixels)" in table
    document = json.loads(result.to_json())
    assert document["classes"][2]["iou"] is None
    assert document["confusion"] == [[0, 256, 0], [256, 0, 0], [0, 0, 0]]


def test_evaluate_multilabel_thresholds_the_sigmoid():
    labels = torch.zeros(1, 2, 6, 6)
    labels[0, 0, :3] = 1
    labels[0, 1, :, :2] = 1

    class Fixed(nn.Module):
        def forward(self, x):
            logits = (labels * 2 - 1) * 4  # sigmoid: 0.98 or 0.02
            logits[:, 1, 0, 5] = 0.1  # a false positive of label 1 (sigmoid 0.52)
            return logits.expand(x.shape[0], -1, -1, -1)

    result = evaluate(Fixed(), Pairs([(torch.zeros(3, 6, 6), labels[0])]), classes=2)
    assert result.multilabel and result.confusion.shape == (2, 2, 2)
    assert result.confusion[1].tolist() == [[23, 1], [0, 12]]
    assert result.per_class[0]["iou"] == 1.0
    assert result.per_class[1]["iou"] == pytest.approx(12 / 13)
    assert "label" in result.table().splitlines()[0]


def test_a_single_logit_model_is_binary_with_classes_2():
    mask = torch.zeros(8, 8, dtype=torch.long)
    mask[2:5] = 1

    class Binary(nn.Module):
        def forward(self, x):
            return (x[:, :1] - 0.5) * 8

    result = evaluate(Binary(), [(mask[None].float(), mask)], classes=2)
    assert result.means["iou"] == 1.0 and result.confusion.tolist() == [[40, 0], [0, 24]]


def test_evaluate_refuses_a_mismatch_and_an_empty_dataset():
    pairs = Pairs([_encoded(torch.zeros(8, 8, dtype=torch.long))])
    with pytest.raises(InvalidOptionError, match="outputs 4 channels but classes=3"):
        evaluate(OneHotOfChannel0(4), pairs, classes=3)
    with pytest.raises(InvalidOptionError, match="the dataset is empty"):
        evaluate(OneHotOfChannel0(4), Pairs([]), classes=4)
    with pytest.raises(InvalidOptionError, match="class_names has 1 names for 4 classes"):
        evaluate(OneHotOfChannel0(4), pairs, classes=4, class_names=["x"])
    with pytest.raises(InvalidOptionError, match="unknown device 'gpu0'"):
        evaluate(OneHotOfChannel0(4), pairs, classes=4, device="gpu0")
    bad = Pairs([(torch.zeros(1, 8, 8), torch.full((8, 8), 9))])
    with pytest.raises(InvalidTargetError, match="targets hold values 9"):
        evaluate(OneHotOfChannel0(4), bad, classes=4)


# -- a real model on the synthetic dataset, and the command --------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A dataset of 4 synthetic images and an untrained Unet/resnet18 saved next to it."""
    root = tmp_path_factory.mktemp("evaluate")
    write_synthetic_dataset(root / "data", count=4, size=48)
    torch.manual_seed(0)
    model = segcore.build("unet", encoder="resnet18", encoder_weights=None, encoder_depth=3,
                          decoder_channels=(32, 16, 8), classes=4)
    model.save_pretrained(root / "model")
    return root


def _reference_confusion(model, dataset, classes):
    confusion = torch.zeros(classes, classes, dtype=torch.long)
    with torch.no_grad():
        for image, mask in dataset:
            predicted = model(image[None]).argmax(1)[0]
            for truth, guess in zip(mask.flatten().tolist(), predicted.flatten().tolist()):
                confusion[truth, guess] += 1
    return confusion


def test_evaluate_a_saved_unet_on_the_synthetic_dataset(saved):
    model = segcore.from_pretrained(saved / "model")
    report = scan(saved / "data", classes=4)
    dataset = report.dataset(None, build_eval_transform(resolve_normalization()))
    result = evaluate(model, dataset, classes=4, batch_size=3, class_names=report.class_names)
    assert result.images == 4
    assert result.class_names == ["background", "disk", "rectangle", "triangle"]
    assert torch.equal(result.confusion, _reference_confusion(model, dataset, 4))
    assert 0.0 <= result.means["iou"] < 1.0
    loader = torch.utils.data.DataLoader(dataset, batch_size=1)
    assert torch.equal(evaluate(model, loader, classes=4).confusion, result.confusion)


def test_evaluate_with_a_tile_larger_than_the_images_matches(saved):
    pytest.importorskip("segcore_train.predict")
    model = segcore.from_pretrained(saved / "model")
    dataset = scan(saved / "data", classes=4).dataset(
        "train", build_eval_transform(resolve_normalization()))
    whole = evaluate(model, dataset, classes=4)
    tiled = evaluate(model, dataset, classes=4, tile=64)
    assert torch.equal(whole.confusion, tiled.confusion)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def test_the_command_prints_the_table_and_json(saved):
    model, data = str(saved / "model"), str(saved / "data")
    status, output = run("evaluate", model, data, "--split", "all", "--batch-size", "2")
    assert status == 0, output
    assert "split all, 4 images; normalisation: ImageNet defaults" in output
    lines = output.splitlines()
    assert lines[1].split() == ["class", "IoU", "F1", "precision", "recall", "pixels"]
    assert any(line.startswith("3 triangle ") for line in lines)
    assert any(line.startswith("mean ") for line in lines)
    assert "pixel accuracy" in output and "over 4 images" in output

    status, output = run("evaluate", model, data, "--json")
    assert status == 0
    document = json.loads(output)
    assert document["split"] == "val" and document["kind"] == "multiclass"
    assert document["images"] == 1  # splits.json: 3 train, 1 val
    assert [row["name"] for row in document["classes"]] == [
        "background", "disk", "rectangle", "triangle"]
    assert set(document["means"]) == {"iou", "f1", "precision", "recall"}
    assert document["pixels"] == sum(map(sum, document["confusion"]))


def test_the_command_reads_the_model_folders_normalization(saved, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((saved / "model" / name).read_bytes())
    (folder / "normalization.json").write_text(json.dumps(
        {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}))
    status, output = run("evaluate", str(folder), str(saved / "data"))
    assert status == 0, output
    assert f"normalisation: {folder / 'normalization.json'}" in output

    (folder / "normalization.json").write_text(json.dumps({"mean": [0.5], "std": [1, 1, 1]}))
    status, _ = run("evaluate", str(folder), str(saved / "data"))
    assert status == 2


def test_the_command_explains_what_is_wrong(saved, tmp_path, capsys):
    data = str(saved / "data")
    status, _ = run("evaluate", str(tmp_path / "runs" / "best"), data)
    assert status == 2
    assert "model folder" in capsys.readouterr().err

    status, _ = run("evaluate", str(saved / "model"), str(tmp_path / "nothing"))
    assert status == 2
    assert "dataset folder" in capsys.readouterr().err

    # a dataset of 6 classes for a model of 4
    write_synthetic_dataset(tmp_path / "six", count=2, size=32, classes=6)
    status, _ = run("evaluate", str(saved / "model"), str(tmp_path / "six"))
    assert status == 2
    error = capsys.readouterr().err
    assert "does not fit the model" in error and "4 classes" in error
    assert "classes.txt" in error

    status, _ = run("evaluate", str(saved / "model"), data, "--split", "test")
    assert status == 2
    assert "no split 'test'" in capsys.readouterr().err


def test_the_dataset_error_is_a_data_error(saved, tmp_path):
    # the same check through Python: scan's problems become one DataError naming the model
    import argparse

    from segcore_train.evaluate_cli import configure_evaluate

    parser = argparse.ArgumentParser()
    handler = configure_evaluate(parser)
    write_synthetic_dataset(tmp_path / "six", count=2, size=32, classes=6)
    arguments = parser.parse_args([str(saved / "model"), str(tmp_path / "six")])
    with pytest.raises(DataError, match="does not fit the model"):
        handler(arguments, io.StringIO())


def test_the_command_evaluates_multilabel_masks(writer, tmp_path):
    generator = torch.Generator().manual_seed(3)
    for stem in ("a", "b"):
        writer.image(stem, writer.rgb(32, 32))
        planes = (torch.rand(2, 32, 32, generator=generator) > 0.5).to(torch.uint8) * 255
        writer.label_pngs(stem, planes.numpy())
    model = segcore.build("unet", encoder="resnet18", encoder_weights=None, encoder_depth=3,
                          decoder_channels=(32, 16, 8), classes=2)
    model.save_pretrained(tmp_path / "model")
    status, output = run("evaluate", str(tmp_path / "model"), str(writer.root), "--multilabel",
                         "--split", "all", "--json")
    assert status == 0, output
    document = json.loads(output)
    assert document["kind"] == "multilabel" and document["images"] == 2
    assert document["confusion"][0] != document["confusion"][1]  # one 2x2 matrix per label
    assert sum(map(sum, document["confusion"][0])) == 2 * 32 * 32
