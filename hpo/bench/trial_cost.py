"""``hpo bench``: what a trial costs, measured side by side in one run.

A study is only as useful as the number of trials it can afford, and the reference study
found that data loading and kernel launches, not parameters, set its training time. So one
run measures every part of a trial on the same machine at the same moment: the training
step of each seed design (forward + backward + optimizer, steady state), evaluation, the
data pipeline (HDF5 crop cache vs JPEG decode-and-crop, one worker and N workers, and the
device-resident batches of :mod:`hourglass.data.gpu_data`), the Optuna bookkeeping a trial does
(storage writes and pruning decisions on a real SQLite study), and peak memory.

Every model figure is also a ratio to :mod:`hourglass.reference`, the textbook network,
timed in the same run. Steps of all models are interleaved round-robin, so a noisy machine
(a shared CI box) slows every model alike, and each model's figure is its fastest step
(the ``timeit`` convention: slower repeats measure interference, not the code); medians
are reported too. Targets live here and in the README, not in timed unit tests.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hourglass.config import HourglassConfig
from hourglass.costs import costs, count_params
from hourglass.designs import SEED_DESIGNS, load_designs
from hourglass.errors import ConfigError
from hourglass.model import build_model
from hourglass.reference import ReferenceHourglass, reference_train_step
from hourglass.train import compile_mode, compile_model, make_optimizer, prepare_model, step_begin, train_step
from hourglass.train_config import ScheduleConfig
from hpo.bench.loader import benchmark_loader

__all__ = [
    "TrialCostSettings",
    "trial_cost_settings",
    "run_trial_cost_bench",
    "measure_data",
    "measure_train_with_data",
    "measure_bookkeeping",
    "SEED_SCHEDULE",
    "H200_BF16_PEAK",
    "bf16_spec_flops",
    "measure_matmul_flops",
    "compile_seconds",
]

H200_BF16_PEAK = 790e12  # what a large bf16 matmul measured on an H200 here (KINDS.md), FLOP/s
# Dense (no sparsity) bf16 tensor-core FLOP/s from the vendors' data sheets, by device-name
# fragment; the first fragment found in the name wins (PCIe/NVL before the SXM default).
BF16_DENSE_SPEC = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("H200", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10", 125e12),
)
# The reference study's schedule: 20 epochs of the MPII training split, scored on Tompson's validation split.
SEED_SCHEDULE = {"epochs": 20, "train_rows": 22_246, "val_rows": 2_958}
DATA_INPUT = 256  # the data pipeline is always timed at the real input size


@dataclass(frozen=True)
class TrialCostSettings:
    device: str = "cpu"
    designs: tuple[str, ...] = ()  # empty: every seed design
    input_size: int = 256
    batch_size: int = 24
    warmup: int = 3  # untimed steps per model
    rounds: int = 10  # timed steps per model, interleaved round-robin across models
    duel_rounds: int = 10  # extra alternating reference/baseline steps: the ratio everything is judged by
    eval_batch_size: int = 32
    eval_rounds: int = 5
    loader_rows: int = 200  # rows for the per-worker loader figures
    loader_repeats: int = 3  # best of this many loader measurements (each path timed in one block)
    workers: int = 2
    prior_trials: int = 100  # finished trials already in the study when bookkeeping is timed
    threads: int = 0  # CPU intra-op threads; 0 = measure 1 vs all cores and take the faster
    compile: bool = (
        False  # also time the baseline compiled as trials compile it (hourglass.train.compile_mode)
    )
    quick: bool = False
    note: str = ""


def trial_cost_settings(
    device: str | None = None,
    *,
    quick: bool = False,
    designs: tuple[str, ...] = (),
    threads: int = 0,
    compile: bool | None = None,
    smoke: bool = False,
) -> TrialCostSettings:
    """Sizes appropriate to the device: the real input and batch on a GPU, a reduced input
    (128, quick 64) and batch 8 on a CPU, where one full-size step takes many seconds.
    ``compile`` None: on where trials compile by default (CUDA)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if compile is None:
        compile = compile_mode(torch.device(device)) != "off"
    if threads < 0:
        raise ConfigError(f"--threads: expected 0 (auto) or a positive count, but got {threads}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    common = dict(
        device=device, designs=tuple(designs), threads=threads, compile=compile, quick=quick or smoke
    )
    if torch.device(device).type == "cuda":
        return TrialCostSettings(
            **common,
            input_size=256,
            batch_size=24,
            warmup=20 if compile else 5,
            rounds=8 if quick else 30,
            duel_rounds=10 if quick else 30,
            eval_batch_size=64,
            eval_rounds=5 if quick else 10,
            loader_rows=48 if quick else 200,
            loader_repeats=1 if quick else 3,
            workers=min(8, cores),
            prior_trials=20 if quick else 100,
            note="full size: input 256, batch 24 (the seed schedule)",
        )
    if smoke:  # every section once at toy sizes: for the CI run of scripts/gpu_acceptance.sh
        return TrialCostSettings(
            **common,
            input_size=64,
            batch_size=2,
            warmup=1,
            rounds=2,
            duel_rounds=1,
            eval_batch_size=2,
            eval_rounds=1,
            loader_rows=8,
            loader_repeats=1,
            workers=1,
            prior_trials=3,
            note="smoke run: toy sizes, figures are not measurements",
        )
    size = 64 if quick else 128
    return TrialCostSettings(
        **common,
        input_size=size,
        batch_size=8,
        warmup=1,
        rounds=3 if quick else 4,
        duel_rounds=5 if quick else 8,
        eval_batch_size=8 if quick else 16,
        eval_rounds=1 if quick else 2,
        loader_rows=48 if quick else 100,
        loader_repeats=2,
        workers=min(2, cores),
        prior_trials=20 if quick else 100,
        note=f"CPU: reduced input {size} and batch 8 (the designs keep 256 features and all "
        f"their parameters); the data pipeline is timed at {DATA_INPUT}",
    )


# --- models ---------------------------------------------------------------------------------


def _sync(device: torch.device) -> Callable[[], None]:
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


@dataclass
class _Runner:
    """One model with its optimizer and a fixed batch; ``step``/``forward`` run one iteration."""

    name: str
    params: int
    step: Callable[[], Any]
    forward: Callable[[], Any]
    times: list[float] = field(default_factory=list)
    eval_times: list[float] = field(default_factory=list)
    warm_times: list[float] = field(default_factory=list)  # untimed warm-up steps (compile, capture)
    warm_eval_times: list[float] = field(default_factory=list)
    peak_bytes: int = 0


def _batch(settings: TrialCostSettings, device: torch.device, batch_size: int) -> dict[str, torch.Tensor]:
    s, hm = settings.input_size, settings.input_size // 4
    g = torch.Generator().manual_seed(0)
    return {
        "image": torch.randn(batch_size, 3, s, s, generator=g).to(device),
        "heatmaps": torch.rand(batch_size, 16, hm, hm, generator=g).to(device),
        "present": torch.ones(batch_size, 16, dtype=torch.bool, device=device),
    }


def _ours(
    name: str, cfg: HourglassConfig, settings: TrialCostSettings, device: torch.device, compiled: bool = False
) -> _Runner:
    """Our model exactly as a trial trains it (hourglass.train's step, optimizer and layout)."""
    torch.manual_seed(0)
    model = prepare_model(build_model(cfg), device)
    params = count_params(model)
    opt = make_optimizer(model.parameters(), ScheduleConfig())
    # as train() compiles: reduce-overhead (CUDA graphs) on CUDA; asked for on a CPU, plain inductor
    mode = ("reduce-overhead" if device.type == "cuda" else "default") if compiled else "off"
    net = compile_model(model, mode)
    batch = _batch(settings, device, settings.batch_size)
    images = _batch(settings, device, settings.eval_batch_size)["image"].contiguous(
        memory_format=torch.channels_last
    )
    weights = torch.tensor(cfg.loss_weights, device=device)  # built once, as train() does

    def forward() -> torch.Tensor:
        net.eval()
        step_begin(mode)
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = net(images)[:, -1].clone()  # (N, J, S/4, S/4): the evaluated stack
        net.train()
        return out

    def step() -> torch.Tensor:
        step_begin(mode)
        return train_step(net, opt, batch, weights, device)

    return _Runner(name, params, step, forward)


def _reference(settings: TrialCostSettings, device: torch.device, layout: str = "newell") -> _Runner:
    """The textbook network (in the baseline's stem ``layout``) and step: fp32, NCHW, default
    Adam, no compile."""
    torch.manual_seed(0)
    model = ReferenceHourglass(layout=layout).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = _batch(settings, device, settings.batch_size)
    images = _batch(settings, device, settings.eval_batch_size)["image"]

    def forward() -> torch.Tensor:
        model.eval()
        with torch.no_grad():
            out = model(images)[:, -1]
        model.train()
        return out

    return _Runner(
        "reference",
        count_params(model),
        lambda: reference_train_step(model, opt, batch["image"], batch["heatmaps"]),
        forward,
    )


def _interleave(
    runners: list[_Runner], attr: str, warmup: int, rounds: int, device: torch.device, bar: tqdm
) -> None:
    """``warmup`` untimed then ``rounds`` timed calls of every runner's ``attr``, round-robin."""
    sync = _sync(device)
    for r in range(warmup + rounds):
        for run in runners:
            fn = getattr(run, attr)
            if device.type == "cuda":
                base = torch.cuda.memory_allocated(device)
                torch.cuda.reset_peak_memory_stats(device)
            sync()
            start = time.perf_counter()
            fn()
            sync()
            elapsed = time.perf_counter() - start
            if r >= warmup:
                (run.times if attr == "step" else run.eval_times).append(elapsed)
            else:
                (run.warm_times if attr == "step" else run.warm_eval_times).append(elapsed)
            if device.type == "cuda" and attr == "step":
                run.peak_bytes = max(run.peak_bytes, torch.cuda.max_memory_allocated(device) - base)
            bar.update(1)


def _choose_threads(runner: _Runner, settings: TrialCostSettings) -> dict[str, Any]:
    """On a CPU, time the baseline step with 1 thread and with every core; keep the faster.

    On a shared machine, OpenMP threads wait for each other at every op, so one thread
    can be several times faster than two; on an idle one, all cores win. Measure, don't guess.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if settings.threads or settings.quick:  # quick: no probe (one slow multi-thread step can take 10 s)
        chosen = settings.threads or 1
        torch.set_num_threads(chosen)
        return {"chosen": chosen, "probe": None}
    candidates = sorted({1, cores})
    best: dict[int, float] = {}
    runner.step()  # warm
    for r in range(2):
        for n in candidates:
            if r and best[n] > 2 * min(best.values()):
                continue  # clearly slower: one more (slow) step would not change the choice
            torch.set_num_threads(n)
            start = time.perf_counter()
            runner.step()
            best[n] = min(best.get(n, float("inf")), time.perf_counter() - start)
    chosen = min(best, key=best.__getitem__)
    torch.set_num_threads(chosen)
    return {
        "chosen": chosen,
        "probe": {str(n): {"baseline_train_img_s": _rate(settings.batch_size, t)} for n, t in best.items()},
    }


def compile_seconds(warm_times: list[float], times: list[float]) -> float:
    """Seconds the warm-up calls took over the steady median: compilation, CUDA-graph
    capture and autotuning (a trial pays them once per shape)."""
    if not times:
        return 0.0
    median = statistics.median(times)
    return sum(max(w - median, 0.0) for w in warm_times)


def bf16_spec_flops(device_name: str) -> float | None:
    """The card's dense bf16 FLOP/s from its data sheet (None for a card not in the table)."""
    return next((flops for fragment, flops in BF16_DENSE_SPEC if fragment in device_name), None)


def measure_matmul_flops(device: torch.device, n: int = 8192, repeats: int = 10) -> float:
    """FLOP/s of an n x n x n bf16 matmul on ``device``: what this card really reaches,
    the second MFU denominator (the data sheet's is rarely reached)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def _rate(batch: int, seconds: float) -> float:
    return batch / seconds if seconds > 0 else float("nan")


def _summary(run: _Runner, settings: TrialCostSettings) -> dict[str, Any]:
    return {
        "params": run.params,
        "train_img_s": _rate(settings.batch_size, min(run.times)),
        "train_step_s": min(run.times),
        "train_step_median_s": statistics.median(run.times),
        "eval_img_s": _rate(settings.eval_batch_size, min(run.eval_times)),
        "peak_memory_bytes": run.peak_bytes or None,
        "compile_s": compile_seconds(run.warm_times, run.times)
        + compile_seconds(run.warm_eval_times, run.eval_times),
    }


# --- data -------------------------------------------------------------------------------------


def _time_batches(batches: Any, count: int, skip: int, device: torch.device) -> float:
    """images/s over ``count`` batches after ``skip`` untimed ones (worker start-up, warm-up)."""
    sync, it, seen = _sync(device), iter(batches), 0
    for _ in range(skip):
        next(it)
    sync()
    start = time.perf_counter()
    for _ in range(count):
        seen += next(it)["image"].shape[0]
    sync()
    return seen / (time.perf_counter() - start)


def measure_data(settings: TrialCostSettings, device: torch.device, folder: Path) -> dict[str, Any]:
    """Loader throughput at the real input size: per worker (the data helper's
    ``benchmark_loader``: HDF5 row read, in-memory, JPEG decode-and-crop), with N DataLoader
    workers on the HDF5 cache, and device-resident batches (hourglass.data.gpu_data)."""
    from torch.utils.data import DataLoader

    from hourglass.data.augment import AugmentConfig
    from hourglass.data.cache import PoseArrays
    from hourglass.data.dataset import PoseDataset
    from hourglass.data.gpu_data import GpuPoseData
    from hourglass.data.synthetic import make_synthetic

    runs = [
        benchmark_loader(n=settings.loader_rows, input_size=DATA_INPUT)
        for _ in range(settings.loader_repeats)
    ]
    per_worker = {k: max(run[k] for run in runs) for k in ("hdf5_img_s", "memory_img_s", "jpeg_img_s")}
    per_worker.update(rows=runs[0]["rows"], jpeg_size=runs[0]["jpeg_size"])
    bs, w = settings.batch_size, settings.workers
    count = 4 if settings.quick else 10
    path = make_synthetic(bs * (count + w + 1), DATA_INPUT, seed=1).save(folder / "loader.h5")
    lazy = PoseArrays.load(path, lazy=True)
    lazy = replace(lazy, is_val=np.zeros(len(lazy), dtype=bool))
    dataset = PoseDataset(lazy, "train", DATA_INPUT, augment=AugmentConfig())
    loader = DataLoader(
        dataset, batch_size=bs, shuffle=True, num_workers=w, generator=torch.Generator().manual_seed(0)
    )
    workers_img_s = _time_batches(loader, count, skip=w, device=torch.device("cpu"))
    memory = replace(PoseArrays.load(path), is_val=np.zeros(len(lazy), dtype=bool))
    gpu = GpuPoseData(memory, "train", DATA_INPUT, augment=AugmentConfig(), device=device)
    batches = gpu.batches(bs, shuffle=True, generator=torch.Generator().manual_seed(0))
    device_img_s = _time_batches(batches, min(count, len(batches) - 1), skip=1, device=device)
    return {
        "input_size": DATA_INPUT,
        "per_worker": {k: per_worker[k] for k in ("hdf5_img_s", "memory_img_s", "jpeg_img_s")},
        "per_worker_rows": per_worker["rows"],
        "per_worker_repeats": settings.loader_repeats,
        "jpeg_size": per_worker["jpeg_size"],
        "workers": w,
        "workers_hdf5_img_s": workers_img_s,
        "device_batches_img_s": device_img_s,
        "device_batches_device": str(device),
    }


def measure_train_with_data(
    cfg: HourglassConfig, settings: TrialCostSettings, device: torch.device
) -> dict[str, Any]:
    """The baseline's steady-state rate with its data made as a trial makes it on this device
    (GPU: device-resident batches; CPU: the albumentations DataLoader in the main process)."""
    from torch.utils.data import DataLoader

    from hourglass.data.augment import AugmentConfig
    from hourglass.data.dataset import PoseDataset
    from hourglass.data.gpu_data import GpuPoseData
    from hourglass.data.synthetic import make_synthetic

    bs, count = settings.batch_size, settings.rounds
    arrays = make_synthetic(bs * (count + settings.warmup + 1), settings.input_size, seed=2)
    arrays = replace(arrays, is_val=np.zeros(len(arrays), dtype=bool))
    if device.type == "cuda":
        batches: Any = GpuPoseData(
            arrays, "train", settings.input_size, augment=AugmentConfig(), device=device
        )
        batches, path = (
            batches.batches(bs, shuffle=True, generator=torch.Generator().manual_seed(0)),
            "gpu_data",
        )
    else:
        dataset = PoseDataset(arrays, "train", settings.input_size, augment=AugmentConfig())
        batches = DataLoader(dataset, batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(0))
        path = "dataloader"
    torch.manual_seed(0)
    model = prepare_model(build_model(cfg), device)
    opt = make_optimizer(model.parameters(), ScheduleConfig())
    sync, it, times = _sync(device), iter(batches), []
    weights = torch.tensor(cfg.loss_weights, device=device)  # built once, as train() does
    for i in range(settings.warmup + count):
        sync()
        start = time.perf_counter()
        train_step(model, opt, next(it), weights, device)
        sync()
        if i >= settings.warmup:
            times.append(time.perf_counter() - start)
    return {
        "design": "baseline",
        "data_path": path,
        "img_s": _rate(bs, min(times)),
        "img_s_median": _rate(bs, statistics.median(times)),
    }


# --- study bookkeeping ------------------------------------------------------------------------


def measure_bookkeeping(folder: Path, prior_trials: int, epochs: int) -> dict[str, Any]:
    """Seconds of the Optuna work one trial does, on a real SQLite study holding
    ``prior_trials`` finished trials: the objective's per-trial user attrs, per epoch the
    curve + epochs_run writes and the Pareto-halving pruning decision, and the final tell."""
    import optuna

    from hpo import record as rec
    from hpo.pruning import ParetoHalvingPruner
    from hpo.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(f"sqlite:///{folder / 'bookkeeping.db'}")
    names = ["pckh", "params", "train_time"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(
            study_name="bench", storage=storage, directions=["maximize", "minimize", "minimize"]
        )
        study.set_metric_names(names)
    rec.study_put(study, rec.STUDY_OBJECTIVES, names)
    rng = np.random.default_rng(0)
    config = {
        "model": HourglassConfig().to_dict(),
        "schedule": asdict(ScheduleConfig()),
        "data": "synthetic:2000:64:0",
    }
    prior = []
    for _ in range(prior_trials):
        curve = [
            {
                "epoch": e,
                "pckh": float(80 * e / epochs * rng.uniform(0.8, 1)),
                "loss": 1e-3,
                "time_s": 60.0 * e,
            }
            for e in range(1, epochs + 1)
        ]
        values = [curve[-1]["pckh"], int(rng.integers(1e6, 2e7)), curve[-1]["time_s"]]
        prior.append(
            optuna.trial.create_trial(
                values=values, user_attrs={rec.CURVE: curve, rec.CONFIG: config, rec.PARAMS: values[1]}
            )
        )
    study.add_trials(prior)
    pruner = ParetoHalvingPruner()
    trial = study.ask()
    start = time.perf_counter()
    rec.put_all(
        trial,
        {
            rec.PARAMS: 6_570_400,
            rec.FLOPS: 16_672_000_000,
            rec.LAYERS: 198,
            rec.OPS_PER_STEP: 6252,
            rec.CONFIG: config,
            rec.CONFIG_HASH: "0123456789abcdef",
        },
    )
    static_s = time.perf_counter() - start
    curve, writes, prune = [], [], []
    for epoch in range(1, epochs + 1):
        pckh = 70.0 * epoch / epochs
        start = time.perf_counter()
        curve.append({"epoch": epoch, "pckh": pckh, "loss": 1e-3, "time_s": 60.0 * epoch})
        rec.put_all(trial, {rec.CURVE: curve, rec.EPOCHS_RUN: epoch})
        mid = time.perf_counter()
        if epoch < epochs:
            pruner.should_prune(study, trial.number, epoch, [pckh, 6_570_400, 60.0 * epoch], study.directions)
        prune.append(time.perf_counter() - mid)
        writes.append(mid - start)
    start = time.perf_counter()
    rec.put_all(
        trial,
        {
            rec.EPOCHS_RUN: epochs,
            rec.WALL_TIME_S: 60.0 * epochs,
            rec.TRAIN_IMG_S: 100.0,
            rec.DEVICE: "cpu",
            rec.RESUMED_FROM_EPOCH: 0,
        },
    )
    study.tell(trial, [pckh, 6_570_400, 60.0 * epochs])
    final_s = time.perf_counter() - start
    return {
        "storage": "sqlite (temporary file)",
        "prior_trials": prior_trials,
        "epochs": epochs,
        "writes_s": static_s + sum(writes) + final_s,  # per trial
        "pruning_s": sum(prune),  # per trial; the study is read only at the pruner's rungs
        "per_epoch_s": (sum(writes) + sum(prune)) / epochs,
        "per_trial_s": static_s + sum(writes) + sum(prune) + final_s,
    }


# --- the run ----------------------------------------------------------------------------------


def _designs(settings: TrialCostSettings, path: Path) -> dict[str, HourglassConfig]:
    all_designs = load_designs(path, input_size=settings.input_size)
    unknown = [d for d in settings.designs if d not in all_designs]
    if unknown:
        raise ConfigError(f"--designs: unknown design {unknown[0]!r} (known: {', '.join(all_designs)})")
    names = settings.designs or tuple(all_designs)
    names = ("baseline", *(n for n in names if n != "baseline"))  # first: the ratios are about it
    return {n: all_designs[n] for n in names}


def _peak_memory(device: torch.device, runners: list[_Runner]) -> dict[str, Any]:
    if device.type == "cuda":
        return {
            "kind": "torch.cuda.max_memory_allocated per step (activations + temporaries)",
            "peak_bytes": max(r.peak_bytes for r in runners),
        }
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if platform.system() == "Darwin" else 1024  # Linux reports KiB
    return {"kind": "process max RSS (getrusage), all models resident", "peak_bytes": int(rss * scale)}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def run_trial_cost_bench(
    settings: TrialCostSettings,
    *,
    designs_path: str | Path = SEED_DESIGNS,
    progress: bool = True,
    peak_flops: float | None = None,
) -> dict[str, Any]:
    """Run every measurement once and return the JSON-ready result (see the module doc).

    On a GPU, MFU is given against the card's dense bf16 data-sheet figure (``peak_flops``
    overrides it) and against a large bf16 matmul measured in this run."""
    started = time.perf_counter()
    device = torch.device(settings.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device: {settings.device!r} was asked for, but torch sees no CUDA device")
    threads_before = torch.get_num_threads()
    configs = _designs(settings, Path(designs_path))
    sections: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        sections[name] = now - mark
        mark = now

    try:
        runners = [_reference(settings, device, configs["baseline"].stem.layout)] + [
            _ours(n, c, settings, device) for n, c in configs.items()
        ]
        if settings.compile:
            runners.append(_ours("baseline+compile", configs["baseline"], settings, device, compiled=True))
        threads = _choose_threads(runners[1], settings) if device.type == "cpu" else None
        lap("build_and_threads")
        total = (
            len(runners) * (settings.warmup + settings.rounds + 1 + settings.eval_rounds)
            + 2 * settings.duel_rounds
        )
        with tqdm(total=total, desc="model steps", unit="step", disable=not progress, leave=False) as bar:
            _interleave(runners, "step", settings.warmup, settings.rounds, device, bar)
            _interleave(runners[:2], "step", 0, settings.duel_rounds, device, bar)  # reference, baseline
            _interleave(runners, "forward", 1, settings.eval_rounds, device, bar)
        lap("models")
        ref, ours = runners[0], {r.name: r for r in runners[1:]}
        designs = {name: _summary(run, settings) for name, run in ours.items()}
        for name, row in designs.items():
            row["train_step_vs_reference"] = min(ours[name].times) / min(ref.times)
            if name in configs and (
                name == "baseline" or not settings.quick
            ):  # ~1 s each: baseline only if quick
                c = costs(configs[name])
                row.update(flops=c.flops, layers=c.layers)
        memory = _peak_memory(device, runners)
        lap("flops")
        if progress:
            tqdm.write("timing the data pipeline, the baseline with its data, and the study bookkeeping ...")
        with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
            data = measure_data(settings, device, Path(tmp))
            lap("data")
            with_data = measure_train_with_data(configs["baseline"], settings, device)
            lap("train_with_data")
            bookkeeping = measure_bookkeeping(Path(tmp), settings.prior_trials, SEED_SCHEDULE["epochs"])
        start = time.perf_counter()
        costs(HourglassConfig())  # what the objective computes for every trial before training
        bookkeeping["costs_s"] = time.perf_counter() - start
        lap("bookkeeping")
    finally:
        torch.set_num_threads(threads_before)

    base = designs["baseline"]
    ep, tr, va = SEED_SCHEDULE["epochs"], SEED_SCHEDULE["train_rows"], SEED_SCHEDULE["val_rows"]
    projected = ep * (tr / with_data["img_s"] + va / base["eval_img_s"])
    eager_projected = projected
    data_s = max(1 / with_data["img_s"] - 1 / base["train_img_s"], 0.0)  # per image, on top of the step
    compiled = designs.get("baseline+compile")
    compile_s = compiled["compile_s"] if compiled else None
    if compiled:  # as a trial runs it: compiled step + the same data, compiled evaluation, compile once
        projected = (
            ep * (tr * (1 / compiled["train_img_s"] + data_s) + va / compiled["eval_img_s"])
            + compiled["compile_s"]
        )
    fastest = max(designs, key=lambda n: designs[n]["train_img_s"])
    fastest_trial = ep * (
        tr * (1 / designs[fastest]["train_img_s"] + data_s) + va / designs[fastest]["eval_img_s"]
    )
    bk = bookkeeping["per_trial_s"]
    bookkeeping.update(
        trial_s=projected,
        share=bk / (bk + projected),
        fastest_design=fastest,
        share_fastest_design=bk / (bk + fastest_trial),
        costs_share=bookkeeping["costs_s"] / projected,
        trial_basis=f"seed schedule ({ep} epochs x {tr:,} + {va:,} val) at this run's baseline rates, "
        f"input {settings.input_size}",
    )
    fastest_base = compiled if compiled and compiled["train_img_s"] > base["train_img_s"] else base
    achieved = fastest_base["train_img_s"] * 3 * base["flops"]  # forward x 3 = forward + backward
    mfu = None
    if device.type == "cuda":
        spec = peak_flops or bf16_spec_flops(_device_name(device))
        matmul = measure_matmul_flops(device)
        mfu = {
            "vs_spec": achieved / spec if spec else None,
            "vs_matmul": achieved / matmul,
            "spec_flops": spec,
            "matmul_flops": matmul,
            "of": "baseline+compile" if fastest_base is compiled else "baseline",
            "basis": "training step FLOPs (3 x forward, FlopCounter) x img/s, steady state, data excluded",
        }
    ratios = {
        "train_step_vs_reference": base["train_step_vs_reference"],
        # the cache as trials read it (load_pose_data loads the HDF5 file into memory once)
        "cache_loader_vs_decode": data["per_worker"]["memory_img_s"] / data["per_worker"]["jpeg_img_s"],
        # the same with one HDF5 row read per sample (PoseArrays.load(lazy=True), caches larger than RAM)
        "cache_rows_vs_decode": data["per_worker"]["hdf5_img_s"] / data["per_worker"]["jpeg_img_s"],
        "train_step_vs_reference_median": base["train_step_median_s"] / statistics.median(ref.times),
        # each baseline step over the reference step right before it (same moment, same interference)
        "train_step_vs_reference_paired": statistics.median(
            b / r for b, r in zip(ours["baseline"].times, ref.times)
        ),
        "eval_vs_reference": min(ours["baseline"].eval_times) / min(ref.eval_times),
        "device_batches_vs_decode": data["device_batches_img_s"] / data["per_worker"]["jpeg_img_s"],
    }
    return {
        "device": str(device),
        "device_name": _device_name(device),
        "torch": torch.__version__,
        "threads": threads,
        "settings": asdict(settings),
        "reduced_size": (settings.input_size, settings.batch_size) != (256, 24),
        "statistic": "fastest of the interleaved timed steps (timeit convention); *_median_s for the median; "
        "reference and baseline also alternate for duel_rounds extra steps",
        "ratios": ratios,
        "reference": _summary(ref, settings),
        "designs": designs,
        "train_with_data": with_data,
        "data": data,
        "bookkeeping": bookkeeping,
        "memory": memory,
        "projected_seed_schedule_s": projected,
        "projected_seed_schedule_eager_s": eager_projected,
        "projected_basis": bookkeeping["trial_basis"]
        + ("; compiled step, compile seconds included" if compiled else "; eager step"),
        "compile_s": compile_s,
        "achieved_tflops": achieved / 1e12,
        "mfu": mfu,
        "sections_s": sections,
        "elapsed_s": time.perf_counter() - started,
    }
