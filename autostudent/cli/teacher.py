"""``autostudent teacher train|eval``: make a teacher from the zoo, or report one's accuracy.

torch is imported inside the commands: ``--help`` and flag errors answer without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from autostudent.errors import UserError


def _root_option(help: str = "Dataset folder or file.") -> typer.Option:
    return typer.Option(None, "--data-root", "--root", help=help)


# image-folder's options (None: not given, the dataset's default)
IMAGE_SIZE = typer.Option(None, "--image-size", min=4, help="image-folder: side to resize to.")
CHANNELS = typer.Option(None, "--channels", help="image-folder: 3 (RGB) or 1 (grayscale).")
SKIP_BAD = typer.Option(
    None, "--skip-bad-files/--no-skip-bad-files", help="image-folder: leave unreadable files out."
)


def _options(image_size: int | None, channels: int | None, skip: bool | None) -> dict:
    given = {"image_size": image_size, "channels": channels, "skip_bad_files": skip}
    return {key: value for key, value in given.items() if value is not None}


app = typer.Typer(
    help="Train a built-in teacher or evaluate any teacher file.", no_args_is_help=True
)


@app.command()
def train(
    out: Path = typer.Option(
        ..., "--out", help="Where to write the teacher (.pt2 torch.export archive)."
    ),
    data: str = typer.Option("fashion-mnist", "--data", help="Dataset name."),
    data_root: Path | None = _root_option(),
    image_size: int | None = IMAGE_SIZE,
    channels: int | None = CHANNELS,
    skip_bad_files: bool | None = SKIP_BAD,
    arch: str = typer.Option("resnet8", "--arch", help="Zoo architecture: resnet8, resnet14, ..."),
    width: int | None = typer.Option(None, "--width", help="Channels of the first stage."),
    epochs: int = typer.Option(15, "--epochs", min=1),
    lr: float = typer.Option(0.1, "--lr"),
    seed: int = typer.Option(0, "--seed", min=0),
    val_fraction: float = typer.Option(0.1, "--val-fraction"),
    device: str = typer.Option("cpu", "--device"),
) -> None:
    """Train a zoo teacher with augmentation and write it as a self-contained archive.

    Resumable: after every epoch the training's state is kept in OUT.partial; the same command
    run again continues after the last finished epoch (other options: exit 2)."""
    from autostudent.datasets import load_data
    from autostudent.device import resolve
    from autostudent.teacher import save_teacher
    from autostudent.zoo import TEACHERS, train_teacher

    TEACHERS.get(arch)
    resolve(device, "--device")  # before the data: no GPU is one line, at once
    options = _options(image_size, channels, skip_bad_files)
    d = load_data(data, data_root, val_fraction=val_fraction, seed=seed, options=options)
    # the state after every epoch: the same command run again after a kill continues there
    checkpoint = out.with_name(out.name + ".partial")
    model = train_teacher(
        arch, d, epochs=epochs, seed=seed, width=width, lr=lr, device=device, checkpoint=checkpoint
    )
    save_teacher(model, out, d.input_shape)
    checkpoint.unlink()
    _report(out, d.name, data_root, val_fraction, seed, device, options=options)


@app.command("eval")
def evaluate(
    path: Path = typer.Argument(
        ..., help="Teacher file (torch.export, TorchScript or state_dict)."
    ),
    data: str = typer.Option("fashion-mnist", "--data"),
    data_root: Path | None = _root_option(),
    image_size: int | None = IMAGE_SIZE,
    channels: int | None = CHANNELS,
    skip_bad_files: bool | None = SKIP_BAD,
    factory: str | None = typer.Option(
        None, "--factory", help="'package.module:fn' or 'zoo:NAME' for state_dicts."
    ),
    expects: str = typer.Option(
        "normalised",
        "--input",
        help="The images the teacher expects: 'normalised' (by the data's mean and std), "
        "'unit' (pixels in [0, 1]) or its own 'MEAN,…/STD,…' of [0, 1] pixels (teacher.input).",
    ),
    val_fraction: float = typer.Option(0.1, "--val-fraction"),
    seed: int = typer.Option(0, "--seed", min=0, help="Split seed of the validation set."),
    device: str = typer.Option("cpu", "--device"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Print a teacher's validation and test accuracy and its parameter count."""
    options = _options(image_size, channels, skip_bad_files)
    _report(path, data, data_root, val_fraction, seed, device, as_json, factory, options, expects)


def _source(path: Path, factory: str | None, expects: str):
    """The teacher as the study file's ``teacher:`` section would name it, checked by it."""
    from pydantic import ValidationError

    from autostudent.config import TeacherConfig, describe_error, teacher_input
    from autostudent.teacher import TeacherSource

    try:
        config = TeacherConfig(path=path, factory=factory, input=teacher_input(expects, "--input"))
    except ValidationError as exc:
        raise UserError(f"--{describe_error(exc)}") from None
    return TeacherSource.of(config)


def _report(
    path: Path,
    data: str,
    root: Path | None,
    val_fraction: float,
    seed: int,
    device: str,
    as_json: bool = False,
    factory: str | None = None,
    options: dict | None = None,
    expects: str = "normalised",
) -> None:
    if not path.is_file():  # before loading torch and the data: a typo is reported at once
        raise UserError(f"teacher.path: {path} does not exist")
    source = _source(path, factory, expects)
    from autostudent.datasets import load_data
    from autostudent.device import resolve
    from autostudent.teacher import check_teacher, load_teacher

    resolve(device, "--device")
    d = load_data(data, root, val_fraction=val_fraction, seed=seed, options=options)
    teacher = load_teacher(source, device, d.input_shape, d.num_classes, (d.mean, d.std))
    check_teacher(teacher, d.input_shape, d.num_classes)

    val, test = teacher.accuracy(d, device)
    result = {
        "teacher": str(path),
        "format": teacher.format,
        "sha256": teacher.sha256,
        "input": teacher.input,
        "params": teacher.params(),
        "val_accuracy": val,
        "test_accuracy": test,
    }
    if as_json:
        print(json.dumps(result))
    else:
        test = "n/a" if result["test_accuracy"] is None else f"{result['test_accuracy']:.4f}"
        print(f"{path}: {result['params']:,} params  val {result['val_accuracy']:.4f}  test {test}")
