"""card.md: the exported student's model card, rendered from its metrics.json alone.

What it is, how it was chosen (never on the test split), how to load it with plain torch, what
it takes, how it compares with the teacher and with the same architecture trained without KD
(over seeds: mean ± sd), what retraining cost on this machine, and the result targets it is held
to: met, or how far off and what the figures point at.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    """A result target: at most ``max_params`` parameters at ≥ ``min_accuracy`` test accuracy."""

    name: str
    applies: Callable[[dict], bool]
    max_params: Callable[[dict], int]
    min_accuracy: Callable[[dict], float]


TARGETS: tuple[Target, ...] = (
    Target(
        "1/10 of the teacher's parameters within 0.5 pt of its test accuracy (AutoKD's claim)",
        lambda m: m["teacher"].get("test_accuracy") is not None,
        lambda m: m["teacher"]["params"] // 10,
        lambda m: m["teacher"]["test_accuracy"] - 0.005,
    ),
    Target(
        "≤ 50,000 parameters at ≥ 92.5 % test accuracy (the published 2-conv < 100K figure)",
        lambda m: m.get("dataset") == "fashion-mnist",
        lambda m: 50_000,
        lambda m: 0.925,
    ),
)


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.2f} %"


def _size(v: float | None) -> str:
    if v is None:
        return "—"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if v >= scale:
            return f"{v / scale:.2f}{unit}"
    return f"{v:.0f}"


def _epochs(n: int) -> str:
    return f"{n} epoch" if n == 1 else f"{n} epochs"


def _pm(stats: dict | None) -> str:
    """'mean ± sd' of a {mean, sd} in percent (points for the sd)."""
    if not stats or stats.get("mean") is None:
        return "—"
    sd = "" if stats.get("sd") is None else f" ± {100 * stats['sd']:.2f}"
    return f"{100 * stats['mean']:.2f}{sd} %"


def _mean_of(n: int) -> str:
    return f", mean of {n} seeds" if n > 1 else ""


def _gain(stats: dict) -> str:
    sd = "" if stats.get("sd") is None else f" ± {100 * stats['sd']:.2f}"
    return f"{100 * stats['mean']:+.2f}{sd} pt"


def chosen_how(m: dict) -> list[str]:
    """The card's account of which student was written and how it was chosen."""
    s = m.get("shipped")
    if s is None:  # an export written before the rule existed
        return [f"Chosen by `{m['pick']}`.", ""]
    by = s["chosen_by"]
    if m.get("hand_designed"):
        return _hand_designed(m)
    how = "picked off the search's Pareto front by rule" if by.startswith("--pick") else "named"
    on = "the search's validation accuracy"
    if m.get("rerank"):
        how, on = "picked by rule", "validation accuracy at this recipe (below)"
    runs = f"{s['seeds']} seed{'s' if s['seeds'] > 1 else ''}"
    return [
        "## How this student was chosen",
        "",
        f"Trial {s['trial']} was {how} (`{by}`) on {on}, and the "
        f"retrain length ({_epochs(s['epochs'])}) was fixed before training: nothing was chosen "
        f"on the test split. `student.pt` is {s['rule']} (seed {s['seed']}, arch seed "
        f"{s['arch_seed']}); the export trained {runs}"
        + (f" and a family of {s['family']} architectures" if s["family"] > 1 else "")
        + ", and the other runs are evidence only (mean ± sd below), never a choice.",
        "",
        *_reranked(m.get("rerank")),
    ]


def _hand_designed(m: dict) -> list[str]:
    """``--arch``: a hand-designed student, not a search's."""
    h, s = m["hand_designed"], m["shipped"]
    runs = f"{s['seeds']} seed{'s' if s['seeds'] > 1 else ''}"
    return [
        "## How this student was chosen",
        "",
        f"Not by the search: `{s['chosen_by']}` named the hand-designed family `{h['family']}` "
        f"(docs/baselines.md), sized to its largest member of at most {h['target_params']:,} "
        f"params from its spec, without training ({h['params']:,} params) — the student a user "
        "would build by hand, exported with the same recipe as a searched one. The retrain "
        f"length ({_epochs(s['epochs'])}) was fixed before training: nothing was chosen on the "
        f"test split. `student.pt` is its retrain at seed {s['seed']}; the export trained "
        f"{runs}, and the other runs are evidence only (mean ± sd below), never a choice.",
        "",
    ]


def _reranked(r: dict | None) -> list[str]:
    """The rerank's candidates: the search's accuracy against validation at final fidelity."""
    if not r:
        return []
    size = r["size"]
    seeds = r.get("seeds", [r["seed"]])  # an export before --rerank-seeds: one seed
    each = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    val = "validation" if len(seeds) == 1 else f"validation, mean of {len(seeds)}"
    lines = [
        f"The rule's {len(r['candidates'])} best candidates by the search's accuracy (asked: "
        f"{r['k']}) were each retrained with this recipe ({_epochs(r['epochs'])}, {each}, its "
        f"own KD settings) on the training split ({r['train_images']:,} images) and measured on "
        f"the validation split ({r['val_images']:,}); the best "
        + ("one" if len(seeds) == 1 else "mean")
        + " is exported.",
        "",
        f"| rank | trial | {size} | search's accuracy | {val}, {_epochs(r['epochs'])} |",
        "|---|---|---|---|---|",
    ]
    for rank, c in enumerate(r["candidates"], start=1):
        mark = " **(exported)**" if c["trial"] == r["chosen"] else ""
        vals = c.get("val_accuracies", [])
        cell = _pct(c["val_accuracy"])
        if len(vals) > 1:
            cell = f"{100 * c['val_accuracy']:.2f} ± {100 * statistics.stdev(vals):.2f} %"
        lines.append(
            f"| {rank} | {c['trial']}{mark} | {c[size]:,.0f} | {_pct(c['search_val_accuracy'])} | "
            f"{cell} |"
        )
    return [*lines, ""]


def _machine(m: dict) -> str:
    """What the retrains ran on: the processor, device, threads and torch (the processor and
    torch only where metrics.json recorded them)."""
    machine = m.get("machine") or {}
    threads = f"{m['threads']} torch thread{'' if m['threads'] == 1 else 's'}"
    torch_version = machine.get("torch") and f"torch {machine['torch']}"
    return ", ".join(filter(None, [machine.get("cpu"), m["device"], threads, torch_version]))


def _code(m: dict) -> str:
    """The autostudent that wrote these figures: its version and, from a checkout, the commit."""
    code = m.get("code")
    if not code:
        return ""
    commit = code.get("commit")
    where = f" at commit {commit[:12]}" if commit else ""
    dirty = " with local changes" if code.get("dirty") else ""
    return f" Made by autostudent {code.get('version') or '(unknown version)'}{where}{dirty}."


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def verdict(target: Target, m: dict) -> str:
    """Met, or how far off and which of the figures explain it."""
    cap, floor = target.max_params(m), target.min_accuracy(m)
    # over several seeds the mean is held to the target, not the written seed's figure
    n = len(m.get("seeds", {}).get("seeds", [])) if m.get("seeds") else 1
    acc = m["test_accuracy_mean"] if n > 1 else m["test_accuracy"]
    size_ok, acc_ok = m["params"] <= cap, acc >= floor
    head = f"**{target.name}** (≤ {cap:,} params, ≥ {_pct(floor)}): "
    if size_ok and acc_ok:
        return head + f"**met** ({m['params']:,} params, {_pct(acc)}{_mean_of(n)})."
    misses = []
    if not size_ok:
        misses.append(f"{m['params'] - cap:,} params over")
    if not acc_ok:
        misses.append(f"{100 * (floor - acc):.2f} pt short{_mean_of(n)}")
    why = []
    if not size_ok:
        small = [f for f in m["search"]["front"] if f["params"] <= cap]
        why.append(
            "this student is larger than the target; the search front's students within it: "
            + (
                ", ".join(
                    f"trial {f['trial']} ({f['params']:,}, val {_pct(f['val_accuracy'])})"
                    for f in small
                )
                if small
                else "none (the search found no front student this small)"
            )
        )
    if not acc_ok and m.get("hand_designed"):
        why.append(f"a hand-designed student, retrained {_epochs(m['epochs'])}")
    elif not acc_ok:
        s = m["search"]
        complete = s.get("complete_trials")
        no_kd = m["no_kd"].get("test_accuracy")
        gain = m.get("kd_gain") if n > 1 else None
        added = (
            ""
            if no_kd is None
            else f" (KD added {_gain(gain)})"
            if gain
            else f" (KD added {100 * (m['test_accuracy'] - no_kd):+.2f} pt)"
        )
        why.append(f"retrained {_epochs(m['epochs'])}{added}")
        why.append(
            f"the search had {s['finished_trials']} finished trials"
            + ("" if complete is None else f" ({complete} trained to the end, the rest pruned)")
            + f", each {s['epochs']} epochs on "
            + (f"{s['train_subset']:,}" if s["train_subset"] else "all")
            + " training images; "
            f"this student reached {_pct(s['val_accuracy'])} validation accuracy there"
        )
    return (
        head + "**not met** — " + ", ".join(misses) + ". What bears on it: " + "; ".join(why) + "."
    )


def _load_it(m: dict) -> list[str]:
    """How to run each file export wrote: plain torch, onnxruntime without torch."""
    c, h, w = m["input_shape"]
    files = m.get("files", ["student.pt"])
    lines = []
    if "student.pt" in files:
        lines += [
            "## Load it (plain PyTorch, no autostudent)",
            "",
            "```python",
            "import torch",
            "",
            'student = torch.jit.load("student.pt").eval()',
            f"logits = student(images)  # float32 (N, {c}, {h}, {w}) in [0, 1]",
            "```",
            "",
        ]
    if "student.onnx" in files:
        onnx = m["onnx"]
        lines += [
            "## Load it (onnxruntime, no torch)",
            "",
            "```python",
            "import onnxruntime",
            "",
            'session = onnxruntime.InferenceSession("student.onnx")',
            f'logits = session.run(None, {{"images": images}})[0]  # float32 (N, {c}, {h}, {w})',
            "```",
            "",
            f"Checked at export on the test split: test accuracy {_pct(onnx['test_accuracy'])} "
            f"in onnxruntime ({_pct(onnx['torch_test_accuracy'])} in torch), logits within "
            f"{onnx['max_abs_logit_diff']:.1e} of torch's; ONNX opset {onnx['opset']}, any "
            "batch size.",
            "",
        ]
    if m.get("classes"):
        lines += [f"Classes by output index: {', '.join(m['classes'])}.", ""]
    return lines


def _versus_baseline(m: dict) -> list[str]:
    """What this student wins over the hand-designed one a user would build instead."""
    vs = m.get("versus_baseline")
    if not vs:
        return []
    lines = ["## Against hand-designed students", ""]
    base = vs.get("baseline")
    if base is None:
        return [*lines, f"Not measured: {vs['why']}.", ""]
    kd = "with KD" if base["kd"] else "without KD"
    lines += [
        f"The best hand-designed student of at most this one's size, retrained with the same "
        f"recipe: {base['family']} ({base['params']:,} params, {kd}), test accuracy "
        f"{100 * base['mean']:.2f} ± {100 * base['sd']:.2f} % over {len(base['seeds'])} seeds "
        f"(`autostudent baselines`). This student: **{vs['margin_pt']:+.2f} pt** over it.",
        "",
    ]
    if m.get("taught_by") and base["kd"]:
        lines += [
            "That baseline was distilled from the study's teacher, this student from "
            "`--teach-with`'s: the margin includes the difference of teachers.",
            "",
        ]
    if vs.get("unsized"):
        them = " and ".join(
            f"{u['family']} at {u['params']:,}"
            if u["params"]
            else f"{u['family']} (not importable here: at this student's size)"
            for u in vs["unsized"]
        )
        lines += [
            f"**Not yet compared with hand-designed students of its own size**: {them} params "
            f"(each family sized to this student) were never retrained with this recipe, so the "
            f"margin is over smaller ones and may flatter this student. Size them with "
            f"`{vs['size_them']}`; then `autostudent status` gives the margin.",
            "",
        ]
    return lines


def _teacher_headroom(m: dict) -> list[str]:
    """A warning when the student without KD already reaches the teacher: distillation then has
    nothing to add at this recipe and can only pull the student towards a weaker model."""
    over = m.get("seeds")
    no_kd = (over or {}).get("no_kd") or {}
    alone = no_kd.get("mean") if no_kd.get("mean") is not None else m["no_kd"].get("test_accuracy")
    teacher = m["teacher"].get("test_accuracy")
    if alone is None or teacher is None or alone < teacher:
        return []
    return [
        "",
        f"**The teacher has nothing left to teach this student at this recipe**: without KD it "
        f"reaches {100 * alone:.2f} %{_mean_of(len((over or {}).get('seeds', [0])))}, the "
        f"teacher {100 * teacher:.2f} %. KD pulls it towards the teacher's outputs, so it cannot "
        "add accuracy here; a teacher trained longer (or a larger one) can. The no-KD figure "
        "is measured on the test split, so it is a diagnosis, not a reason to ship that run.",
    ]


def _closed(m: dict) -> str:
    """`` KD closes 0.26 of …`` when metrics.json has ``kd_gap_closed`` (older exports lack it)."""
    closed = m.get("kd_gap_closed")
    if not closed:
        return ""
    return (
        f" KD closes **{closed['share']:.2f}** of the no-KD student's {closed['gap_pt']:.2f} pt "
        "gap to the teacher."
    )


def _fit(m: dict) -> list[str]:
    """How closely the KD student matches its teacher on training images (metrics.json's
    ``teacher_fit``; older exports lack it)."""
    fit = m.get("teacher_fit")
    if not fit:
        return []
    kd, no_kd = fit["kd"], fit["no_kd"]
    n = len(kd["agreement"]["values"])
    alone = "" if no_kd is None else f" (without KD {_pct(no_kd['agreement']['mean'])})"
    return [
        f"Fit to the teacher on {fit['images']:,} training images (clean: no crop, flip or mix; "
        f"no test image{_mean_of(n)}): the student agrees with the teacher's top-1 on "
        f"{_pct(kd['agreement']['mean'])}{alone} and is right on {_pct(kd['accuracy']['mean'])} "
        f"of them, the teacher on {_pct(fit['teacher_accuracy'])}. A student that disagrees "
        "with its teacher on images it was taught on underfits the teacher: a larger student or "
        "a longer schedule may take more from it.",
    ]


def _kd_source(kd: dict) -> str:
    if kd.get("source") == "--kd":
        return ", given with `--kd` instead of the trial's own"
    if kd.get("source") == "baselines":  # --arch: a hand-designed student
        return (
            f", the settings of trial {kd['from_trial']}, the study's most accurate, with which "
            "`autostudent baselines` distils its hand-designed students"
        )
    return ""


def render_card(m: dict) -> str:
    t, kd = m["teacher"], m["kd"]
    shape = m["input_shape"]
    norm = m["normalisation"]
    no_kd = m["no_kd"].get("test_accuracy")
    runtime = m.get("latency_runtime", "torch")
    by = m.get("taught_by")  # --teach-with: another teacher taught it
    hand = m.get("hand_designed")
    lines = [
        f"# Student: trial {m['trial']} of study `{m['study']}`"
        if not hand
        else f"# Student: hand-designed `{hand['family']}` for study `{m['study']}`",
        "",
        f"A {m['params']:,}-parameter student (architecture in `spec.json`, rebuild with "
        "`autostudent.student.build_student`) distilled from "
        + (
            f"`{by['path']}` ({by['params']:,} params, {_pct(by['test_accuracy'])} on the test "
            f"split, fed {by['input']} images), given with `--teach-with` instead of the study's "
            f"teacher `{t['path'].rsplit('/', 1)[-1]}` ({t['params']:,} params), which the "
            "figures below compare it with,"
            if by
            else f"the teacher `{t['path'].rsplit('/', 1)[-1]}` ({t['params']:,} params)"
        )
        + f" with the `{kd['loss']}` KD loss (T = {kd['temperature']:.3g}, α = {kd['alpha']:.3g}"
        + _kd_source(kd)
        + "). Chosen by "
        f"`{m['pick']}`, then retrained from scratch for {_epochs(m['epochs'])} on the full "
        f"training split ({m['train_images']:,} images, augmentation `{m['augment']['mode']}`"
        + (f", K = {m['augment']['views']}" if "views" in m["augment"] else "")
        + ") and measured on the test split.",
        "",
        *chosen_how(m),
        *_load_it(m),
        f"Input: float32 images of shape (N, {', '.join(map(str, shape))}) scaled to [0, 1] as "
        f"the dataset files hold them ({m['input_scale']}). The normalisation (mean "
        f"{[round(v, 4) for v in norm['mean']]}, std {[round(v, 4) for v in norm['std']]}) is "
        "inside the module. Output: logits, one per class.",
        "",
        f"## Metrics (test split, {m['test_images']:,} images)",
        "",
        f"| model | test accuracy | params | FLOPs | latency (batch 1, {runtime}) |",
        "|---|---|---|---|---|",
        f"| this student (KD) | {_pct(m['test_accuracy'])} | {m['params']:,} | "
        f"{_size(m['flops'])} | {m['latency_ms']:.2f} ms |",
        f"| same architecture, no KD | {_pct(no_kd)} | {m['params']:,} | {_size(m['flops'])} | |",
        f"| teacher | {_pct(t['test_accuracy'])} | {t['params']:,} | {_size(t['flops'])} | "
        f"{t['latency_ms']:.2f} ms |",
        *(
            [
                f"| the teacher that taught it (`--teach-with`) | {_pct(by['test_accuracy'])} | "
                f"{by['params']:,} | {_size(by['flops'])} | {by['latency_ms']:.2f} ms |"
            ]
            if by
            else []
        ),
        "",
    ]
    over = m.get("seeds")
    several = over is not None and len(over["seeds"]) > 1
    if no_kd is None:
        lines.append(
            f"No no-KD baseline was trained ({m['no_kd'].get('skipped')}): the KD gain is unknown."
        )
    elif several:
        lines.append(
            f"**KD gain: {_gain(over['kd_gain'])}** (mean ± sd over seeds "
            f"{', '.join(map(str, over['seeds']))}, each paired with the same architecture "
            "trained without KD at the same seed and epochs)." + _closed(m)
        )
    else:
        lines.append(
            f"**KD gain: {100 * (m['test_accuracy'] - no_kd):+.2f} pt** over the same "
            "architecture trained without KD (same epochs, seed and augmentation; one seed)."
            + _closed(m)
        )
    lines += [
        f"Size: 1/{t['params'] / m['params']:.1f} of the teacher's parameters. Against the "
        f"teacher: {100 * (m['test_accuracy'] - (t['test_accuracy'] or 0)):+.2f} pt.",
        *_teacher_headroom(m),
        *_fit(m),
        "",
        f"Retraining on this machine ({_machine(m)}): "
        f"{_minutes(m['retrain_seconds'])} for {_epochs(m['epochs'])} "
        f"({m['retrain_seconds'] / m['epochs']:.0f} s per epoch)"
        + (f"; the no-KD baseline {_minutes(m['no_kd']['retrain_seconds'])}" if no_kd else "")
        + f". Latencies are medians of 30 batch-1 forward passes in {runtime}, measured side by "
        "side." + _code(m),
        "",
    ]
    if several:
        no = over["no_kd"] or {"values": [None] * len(over["seeds"])}
        lines += [
            "## Over seeds",
            "",
            f"The same architecture retrained {len(over['seeds'])} times: with KD "
            f"{_pm(over['kd'])}, without KD {_pm(over['no_kd'])} (mean ± sd).",
            "",
            "| seed | KD | no KD | written |",
            "|---|---|---|---|",
            *(
                f"| {seed} | {_pct(a)} | {_pct(b)} | {'yes' if i == 0 else ''} |"
                for i, (seed, a, b) in enumerate(
                    zip(over["seeds"], over["kd"]["values"], no["values"], strict=True)
                )
            ),
            "",
        ]
    lines += _versus_baseline(m)
    fam = m.get("family")
    if fam:
        lines += [
            "## Family",
            "",
            f"{len(fam['members'])} architectures from the trial's generator point (different "
            f"architecture seeds), each retrained the same way: test accuracy "
            f"{_pct(fam['test_accuracy_mean'])} ± {100 * fam['test_accuracy_sd']:.2f} pt "
            f"(mean ± sd). The exported one is member 1, the trial's own architecture, "
            "whatever the others scored.",
            "",
            "| member | arch seed | params | test accuracy |",
            "|---|---|---|---|",
            *(
                f"| {i + 1} | {f['arch_seed']} | {f['params']:,} | {_pct(f['test_accuracy'])} |"
                for i, f in enumerate(fam["members"])
            ),
            "",
        ]
    targets = [tg for tg in TARGETS if tg.applies(m)]
    if targets:
        lines += ["## Result targets", "", *(f"- {verdict(tg, m)}" for tg in targets), ""]
    return "\n".join(lines)
