"""Image folders written from real Fashion-MNIST images, for the image-folder tests."""

from __future__ import annotations

from pathlib import Path


def write_image_folder(
    root: Path,
    per_class: dict[str, int],
    *,
    size: int = 40,
    classes: int = 10,
    seed: int = 0,
) -> Path:
    """Real Fashion-MNIST images as an RGB image folder: ``root/<split>/<class>/<i>.png|jpg``,
    ``per_class[split]`` images per class, upscaled from 28x28 to ``size`` and tinted with a
    random colour per image (so the three channels differ, and not by class). Half PNG, half
    JPEG. Splits named "" write the class folders straight into root."""
    import numpy as np
    from PIL import Image

    from autostudent._dataset_readers import read_idx_folder
    from autostudent.datasets import _FASHION_MNIST_DEBIAN

    raw = read_idx_folder(_FASHION_MNIST_DEBIAN)
    rng = np.random.default_rng(seed)
    used: set[int] = set()
    for split, n in per_class.items():
        for label in range(classes):
            folder = root / split / f"class_{label}" if split else root / f"class_{label}"
            folder.mkdir(parents=True, exist_ok=True)
            candidates = [int(i) for i in np.flatnonzero(raw.y_train == label) if i not in used]
            for k, i in enumerate(candidates[:n]):
                used.add(i)
                gray = Image.fromarray(raw.x_train[i, 0]).resize((size, size), Image.BILINEAR)
                tint = rng.uniform(0.4, 1.0, 3)
                rgb = (np.asarray(gray, np.float64)[..., None] * tint).astype(np.uint8)
                suffix = "png" if k % 2 == 0 else "jpg"
                Image.fromarray(rgb, "RGB").save(folder / f"{i}.{suffix}", quality=95)
    return root
