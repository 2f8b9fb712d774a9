"""The CUDA kernels of the compress ops (csrc/cuda/*.cu) against the plain-PyTorch references.

They run where a CUDA device is present and the extension was built with its CUDA kernels, and skip
with the reason anywhere else. quantize_per_token must match the reference bit for bit (IEEE division,
round half to even); int8_linear accumulates exactly in int32, so float32 outputs agree to float32
rounding (erff against torch.erf) and float16/bfloat16 outputs to one unit of their last place.
"""

from __future__ import annotations

import pytest
import torch

if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

import compress.ops.kernels as ops  # registers torch.ops.compress.*

if not ops.has_cuda_kernels():
    pytest.skip(f"the CUDA kernels are not built: {ops.status().reason}", allow_module_level=True)

DEVICE = torch.device("cuda")
FLOATS = [torch.float32, torch.float16, torch.bfloat16]
quantize = torch.ops.compress.quantize_per_token
int8_linear = torch.ops.compress.int8_linear


def _dtype_id(dtype) -> str:
    return "default" if dtype is None else str(dtype).removeprefix("torch.")


def _activations(m: int, k: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(m, k, generator=g) * 3.0).to(dtype).to(DEVICE)


def _misaligned(t: torch.Tensor, offset: int) -> torch.Tensor:
    """A contiguous copy of t that starts `offset` elements into a larger CUDA buffer."""
    buf = torch.zeros(t.numel() + offset, dtype=t.dtype, device=DEVICE)
    view = buf[offset:].view(t.shape)
    view.copy_(t)
    assert view.is_contiguous() and view.storage_offset() == offset
    return view


def _assert_quantized_equal(q, scale, x):
    q_ref, scale_ref = ops.quantize_per_token_reference(x.cpu())
    assert q.dtype == torch.int8 and scale.dtype == torch.float32
    assert q.device.type == "cuda" and scale.device.type == "cuda"
    assert tuple(q.shape) == tuple(x.shape) and tuple(scale.shape) == (x.shape[0],)
    assert torch.equal(scale.cpu(), scale_ref), f"scales differ in rows {(scale.cpu() != scale_ref).nonzero()[:8].tolist()}"
    bad = (q.cpu() != q_ref).nonzero()
    assert bad.numel() == 0, f"{len(bad)} of {q.numel()} codes differ, first at {bad[:8].tolist()}"


# ---- quantize_per_token ------------------------------------------------------------------------------

# Covers: odd K (scalar path), K a multiple of 16 bytes (vector path), short rows (a warp per row), long
# rows (a block per row), rows longer than the register cache (re-read), and more rows than the grid
# (grid-stride loop).
QUANT_SHAPES = [(1, 1), (5, 7), (3, 33), (64, 4097), (0, 16), (1000, 64), (17, 768), (256, 4096), (7, 8192),
                (2, 20000), (3, 70001), (100_000, 16), (40_000, 600)]


@pytest.mark.parametrize("dtype", FLOATS, ids=_dtype_id)
@pytest.mark.parametrize("shape", QUANT_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_quantize_matches_reference(shape, dtype):
    x = _activations(*shape, dtype)
    if shape[0] > 2:
        x[shape[0] // 2] = 0  # an all-zero row: scale 1, codes 0
    q, scale = quantize(x)
    _assert_quantized_equal(q, scale, x)
    if shape[0] > 2:
        assert scale[shape[0] // 2].item() == 1.0 and not q[shape[0] // 2].any()


def test_quantize_rounds_half_to_even_and_clamps():
    # absmax 127 gives scale 1 exactly, so x / scale are these values themselves.
    x = torch.tensor([[127.0, 2.5, -3.5, 0.5, -0.5, 1.5, 126.5, -127.0, 3.49]], device=DEVICE)
    q, scale = quantize(x)
    assert scale.item() == 1.0
    assert q.cpu().tolist() == [[127, 2, -4, 0, 0, 2, 126, -127, 3]]
    _assert_quantized_equal(q, scale, x)


@pytest.mark.parametrize("dtype", FLOATS, ids=_dtype_id)
def test_quantize_empty_rows_have_scale_one(dtype):
    q, scale = quantize(torch.empty(4, 0, dtype=dtype, device=DEVICE))
    assert tuple(q.shape) == (4, 0) and q.dtype == torch.int8
    assert torch.equal(scale.cpu(), torch.ones(4))


@pytest.mark.parametrize("dtype", FLOATS, ids=_dtype_id)
@pytest.mark.parametrize("offset", [1, 3, 8])
@pytest.mark.parametrize("k", [1024, 37])
def test_quantize_misaligned_view_matches(dtype, offset, k):
    x = _activations(33, k, dtype, seed=offset)
    view = _misaligned(x, offset)
    if (offset * x.element_size()) % 16:
        assert view.data_ptr() % 16 != 0  # really exercises the unaligned (scalar) path
    q, scale = quantize(view)
    _assert_quantized_equal(q, scale, x)
    q_aligned, scale_aligned = quantize(x)
    assert torch.equal(q, q_aligned) and torch.equal(scale, scale_aligned)


@pytest.mark.parametrize("dtype", FLOATS, ids=_dtype_id)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("shape,where", [((8, 300), (5, 123)), ((3, 20000), (2, 19999)), ((4, 33), (0, 32))],
                         ids=["warp-row", "long-row-tail", "scalar"])
def test_quantize_rejects_nan_and_inf(dtype, bad, shape, where):
    x = _activations(*shape, dtype)
    x[where] = bad
    with pytest.raises(RuntimeError, match=r"compress::quantize_per_token: x contains NaN or Inf \(row "
                                           + str(where[0]) + r"\)"):
        quantize(x)
    # The error is a check, not a device fault: the same op works right after it.
    x[where] = 0
    q, scale = quantize(x)
    _assert_quantized_equal(q, scale, x)


def test_quantize_runs_on_the_current_stream():
    x = _activations(512, 1024, torch.float16)
    expected = quantize(x)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = quantize(x)
    torch.cuda.current_stream().wait_stream(stream)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])


# ---- int8_linear -------------------------------------------------------------------------------------

def _linear_inputs(m: int, n: int, k: int, bias: bool = True, seed: int = 0):
    """CPU tensors: int8 codes in [-127, 127], positive scales of a typical size, a float32 bias."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(-127, 128, (m, k), generator=g, dtype=torch.int8)
    w = torch.randint(-127, 128, (n, k), generator=g, dtype=torch.int8)
    xs = torch.rand(m, generator=g) * 0.02 + 0.001
    ws = torch.rand(n, generator=g) * 0.02 + 0.001
    b = torch.randn(n, generator=g) if bias else None
    return q, xs, w, ws, b


def _cuda(*tensors):
    return [None if t is None else t.to(DEVICE) for t in tensors]


def _assert_close(out: torch.Tensor, ref: torch.Tensor, out_dtype):
    assert out.dtype == ref.dtype == (out_dtype or torch.float32)
    assert out.shape == ref.shape
    if out.dtype == torch.float32:
        torch.testing.assert_close(out.cpu(), ref.cpu(), rtol=1e-5, atol=1e-5)
    else:
        torch.testing.assert_close(out.cpu(), ref.cpu())  # the dtype's own tolerance: about one ulp


def _check_linear(m, n, k, bias, activation, out_dtype, rows=None, seed=0):
    q, xs, w, ws, b = _linear_inputs(m, n, k, bias, seed)
    out = int8_linear(*_cuda(q, xs, w, ws, b), activation, out_dtype)
    assert out.is_cuda and tuple(out.shape) == (m, n)
    if rows is not None:  # compare a few rows only: the reference's matmul is the slow part
        q, xs, out = q[rows], xs[rows], out[rows]
    if q.shape[0] * n * k > 2**28:  # the reference's float64 matmul is exact on the GPU too
        ref = ops.int8_linear_reference(*_cuda(q, xs, w, ws, b), activation, out_dtype)
    else:
        ref = ops.int8_linear_reference(q, xs, w, ws, b, activation, out_dtype)
    _assert_close(out, ref, out_dtype)
    return out


OUT_DTYPES = [None, torch.float32, torch.float16, torch.bfloat16]
# Tensor-core path (K % 16 == 0) with partial tiles in M, N and K; __dp4a path (K % 4 == 0); byte loop.
SMALL_SHAPES = [(1, 1, 16), (3, 5, 7), (17, 33, 64), (2, 3, 4), (33, 65, 48), (5, 7, 100), (130, 260, 80),
                (300, 200, 1040), (64, 96, 20), (129, 1, 32), (1, 257, 4112)]


@pytest.mark.parametrize("out_dtype", OUT_DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("activation", ["none", "gelu"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("shape", SMALL_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_int8_linear_matches_reference(shape, bias, activation, out_dtype):
    _check_linear(*shape, bias, activation, out_dtype)


@pytest.mark.parametrize("out_dtype", OUT_DTYPES, ids=_dtype_id)
@pytest.mark.parametrize("bias,activation", [(True, "gelu"), (False, "none")], ids=["bias-gelu", "plain"])
@pytest.mark.parametrize("shape", [(128, 3072, 768), (128, 768, 3072), (200, 1000, 4096)],
                         ids=lambda s: "x".join(map(str, s)))
def test_int8_linear_matches_reference_at_model_shapes(shape, bias, activation, out_dtype):
    _check_linear(*shape, bias, activation, out_dtype)


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.bfloat16], ids=_dtype_id)
def test_int8_linear_4096_cubed(out_dtype):
    rows = [0, 1, 63, 64, 127, 128, 1000, 2047, 2048, 3001, 4094, 4095]
    out = _check_linear(4096, 4096, 4096, True, "gelu", out_dtype, rows=rows)
    assert out.abs().max() > 0


@pytest.mark.parametrize("shape", [(4, 8, 133136), (3, 5, 133143)], ids=["tensor-cores", "byte-loop"])
def test_int8_linear_longest_reduction(shape):
    _check_linear(*shape, True, "none", torch.float32)


@pytest.mark.parametrize("shape", [(64, 80, 4096), (129, 130, 1024), (5, 7, 100), (3, 5, 7)],
                         ids=lambda s: "x".join(map(str, s)))
def test_int8_linear_accumulates_exactly(shape):
    # Unit scales, no bias: the output is float(q @ w.T), rounded once, whatever the accumulation order.
    m, n, k = shape
    q, _, w, _, _ = _linear_inputs(m, n, k, bias=False)
    out = int8_linear(*_cuda(q, torch.ones(m), w, torch.ones(n)), None, "none")
    assert torch.equal(out.cpu(), (q.long() @ w.long().T).float())


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16, torch.bfloat16], ids=_dtype_id)
def test_int8_linear_kernels_agree_bitwise(out_dtype):
    """One product through the tensor-core kernel (16-byte aligned, K % 16 == 0), the __dp4a kernel
    (a view 4 bytes in) and the byte loop (a view 1 byte in): the same epilogue, the same bits."""
    m, n, k = 70, 150, 192
    q, xs, w, ws, b = _cuda(*_linear_inputs(m, n, k))
    expected = int8_linear(q, xs, w, ws, b, "gelu", out_dtype)
    _assert_close(expected, ops.int8_linear_reference(q, xs, w, ws, b, "gelu", out_dtype), out_dtype)
    for offset in (4, 1):
        qv, wv = _misaligned(q, offset), _misaligned(w, offset)
        assert qv.data_ptr() % 16 != 0 and wv.data_ptr() % 16 != 0
        assert torch.equal(int8_linear(qv, xs, wv, ws, b, "gelu", out_dtype), expected), f"offset {offset}"


@pytest.mark.parametrize("out_dtype", [torch.float32, torch.float16], ids=_dtype_id)
def test_int8_linear_empty_dimensions(out_dtype):
    q, xs, w, ws, b = _cuda(*_linear_inputs(0, 8, 32))
    out = int8_linear(q, xs, w, ws, b, "gelu", out_dtype)
    assert tuple(out.shape) == (0, 8) and out.dtype == out_dtype and out.is_cuda

    q, xs, w, ws, b = _cuda(*_linear_inputs(5, 0, 32))
    out = int8_linear(q, xs, w, ws, b, "gelu", out_dtype)
    assert tuple(out.shape) == (5, 0) and out.dtype == out_dtype

    # K = 0: the product is all zeros, so the output is act(bias) in every row (or act(0) = 0).
    q, xs, w, ws, b = _linear_inputs(5, 8, 0)
    out = int8_linear(*_cuda(q, xs, w, ws, b), "gelu", out_dtype)
    _assert_close(out, ops.int8_linear_reference(q, xs, w, ws, b, "gelu", out_dtype), out_dtype)
    expected = torch.nn.functional.gelu(b).to(out_dtype).expand(5, 8)
    torch.testing.assert_close(out.cpu(), expected)
    out = int8_linear(*_cuda(q, xs, w, ws, None), "none", out_dtype)
    assert tuple(out.shape) == (5, 8) and not out.any()


def test_int8_linear_runs_on_the_current_stream():
    q, xs, w, ws, b = _cuda(*_linear_inputs(256, 512, 1024))
    expected = int8_linear(q, xs, w, ws, b, "gelu", torch.float16)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = int8_linear(q, xs, w, ws, b, "gelu", torch.float16)
    torch.cuda.current_stream().wait_stream(stream)
    assert torch.equal(got, expected)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs a second CUDA device")
def test_ops_run_on_a_non_default_device():
    dev = torch.device("cuda", 1)
    x = _activations(64, 256, torch.float32).to(dev)
    q, scale = quantize(x)
    assert q.device == dev and scale.device == dev
    _assert_quantized_equal(q, scale, x)
    qq, xs, w, ws, b = (None if t is None else t.to(dev) for t in _linear_inputs(64, 96, 256))
    out = int8_linear(qq, xs, w, ws, b, "gelu", None)
    assert out.device == dev
    _assert_close(out, ops.int8_linear_reference(*(t.cpu() for t in (qq, xs, w, ws, b)), "gelu", None), None)


# ---- registration, errors, compilation ----------------------------------------------------------------

def test_opcheck_quantize_per_token():
    for x in (_activations(33, 64, torch.float32), _activations(5, 7, torch.bfloat16)):
        result = torch.library.opcheck(quantize.default, (x,))
        assert result and set(result.values()) == {"SUCCESS"}, result


@pytest.mark.parametrize("bias,activation,out_dtype", [(True, "gelu", torch.float16), (False, "none", None),
                                                       (True, "none", torch.bfloat16)])
def test_opcheck_int8_linear(bias, activation, out_dtype):
    q, xs, w, ws, b = _cuda(*_linear_inputs(40, 72, 96, bias))
    kwargs = {} if out_dtype is None else {"out_dtype": out_dtype}
    result = torch.library.opcheck(int8_linear.default, (q, xs, w, ws, b, activation), kwargs)
    assert result and set(result.values()) == {"SUCCESS"}, result


@pytest.mark.parametrize("cpu_arg", ["q", "x_scale", "w_q", "w_scale", "bias"])
def test_int8_linear_rejects_mixed_devices(cpu_arg):
    names = ["q", "x_scale", "w_q", "w_scale", "bias"]
    args = _cuda(*_linear_inputs(4, 8, 32))
    args[names.index(cpu_arg)] = args[names.index(cpu_arg)].cpu()
    with pytest.raises(RuntimeError, match=r"compress::int8_linear: .*must be on") as err:
        int8_linear(*args, "none")
    message = str(err.value)
    assert "cpu" in message and "cuda" in message, message
    if cpu_arg == "bias":
        assert "bias" in message, message


def test_int8_linear_rejects_int32_weights():
    q, xs, w, ws, b = _cuda(*_linear_inputs(4, 8, 32))
    with pytest.raises(RuntimeError, match=r"compress::int8_linear: w_q must be a 2-D int8 tensor"):
        int8_linear(q, xs, w.int(), ws, b, "none")


def test_int8_linear_rejects_bad_activation_and_out_dtype():
    q, xs, w, ws, b = _cuda(*_linear_inputs(4, 8, 32))
    with pytest.raises(RuntimeError, match=r"compress::int8_linear: activation must be"):
        int8_linear(q, xs, w, ws, b, "relu")
    with pytest.raises(RuntimeError, match=r"compress::int8_linear: out_dtype must be"):
        int8_linear(q, xs, w, ws, b, "none", torch.float64)


def test_quantize_rejects_bad_input():
    with pytest.raises(RuntimeError, match=r"compress::quantize_per_token: x must be float32, float16 or bfloat16"):
        quantize(torch.zeros(4, 8, dtype=torch.float64, device=DEVICE))
    with pytest.raises(RuntimeError, match=r"compress::quantize_per_token: x must be contiguous"):
        quantize(torch.zeros(8, 4, device=DEVICE).t())
    with pytest.raises(RuntimeError, match=r"compress::quantize_per_token: x must be 2-D"):
        quantize(torch.zeros(2, 4, 8, device=DEVICE))


def test_torch_compile_fullgraph_matches_eager():
    def quantized_linear(x, w, ws, b):
        q, scale = torch.ops.compress.quantize_per_token(x)
        return torch.ops.compress.int8_linear(q, scale, w, ws, b, "gelu", torch.bfloat16)

    compiled = torch.compile(quantized_linear, fullgraph=True)
    _, _, w, ws, b = _cuda(*_linear_inputs(1, 192, 320))
    for m in (64, 33):
        x = _activations(m, 320, torch.float16, seed=m)
        expected = quantized_linear(x, w, ws, b)
        got = compiled(x, w, ws, b)
        assert got.dtype == torch.bfloat16 and tuple(got.shape) == (m, 192)
        assert torch.equal(got, expected)


# ---- compute-sanitizer ---------------------------------------------------------------------------------

SANITIZED = """
import torch, compress.ops
for m, n, k in [(1, 1, 16), (3, 5, 7), (17, 33, 64), (130, 70, 200), (129, 257, 96)]:
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        x = torch.randn(m, k, device="cuda", dtype=dtype)
        q, s = torch.ops.compress.quantize_per_token(x)
        w, ws = torch.ops.compress.quantize_per_token(torch.randn(n, k, device="cuda"))
        torch.ops.compress.int8_linear(q, s, w, ws, torch.randn(n, device="cuda"), "gelu", dtype)
torch.cuda.synchronize()
print("ok")
"""


@pytest.mark.parametrize("tool", ["memcheck", "racecheck", "initcheck"])
def test_kernels_are_clean_under_compute_sanitizer(tool):
    import os
    import shutil
    import subprocess
    import sys

    sanitizer = shutil.which("compute-sanitizer") or next(
        (str(p) for p in (os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "compute-sanitizer"),)
         if os.path.exists(p)), None)
    if sanitizer is None:
        pytest.skip("compute-sanitizer not found (it ships with the CUDA toolkit)")
    proc = subprocess.run([sanitizer, f"--tool={tool}", "--error-exitcode=99", sys.executable, "-c", SANITIZED],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout[-5000:] + proc.stderr[-5000:]
