"""torch.ops.compress on the CPU: every kernel path this CPU can run against the plain-PyTorch
reference, the dispatcher checks (opcheck), tracing (torch.compile, torch.export), and bad input."""

from __future__ import annotations

import pytest
import torch

from compress.ops import kernels as ops
from compress.ops.cpu_features import ISA_NAMES, cpu_isa, runnable_isas
from compress.ops.packing import pack_weight

ISAS = list(ISA_NAMES)
AVAILABLE = {name: name in runnable_isas() for name in ISAS}
SHAPES = [(1, 1, 1), (3, 5, 7), (5, 11, 37), (17, 33, 64), (4, 3, 16), (64, 250, 3072), (130, 97, 200), (0, 4, 8), (6, 0, 8),
          (2, 3, 0)]

pytestmark = pytest.mark.skipif(ops.status().backend != "extension",
                                reason=f"the compiled kernels are not loaded: {ops.status().reason}")


@pytest.fixture(params=ISAS)
def isa(request, monkeypatch):
    if not AVAILABLE[request.param]:
        pytest.skip(f"this CPU cannot run the {request.param} kernels (it has {cpu_isa()})")
    monkeypatch.setenv("COMPRESS_OPS_CPU_ISA", request.param)
    return request.param


def _weights(n, k, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(-127, 128, (n, k), dtype=torch.int8, generator=g), torch.rand(n, generator=g) / 50,
            torch.randn(n, generator=g))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_quantize_per_token_matches_reference_bit_for_bit(isa, shape):
    m, _, k = shape
    x = torch.randn(m, k, generator=torch.Generator().manual_seed(1)) * 3
    q, scale = torch.ops.compress.quantize_per_token(x)
    q_ref, scale_ref = ops.quantize_per_token_reference(x)
    assert q.dtype == torch.int8 and scale.dtype == torch.float32 and q.shape == (m, k) and scale.shape == (m,)
    assert torch.equal(q, q_ref) and torch.equal(scale, scale_ref)


def test_quantize_per_token_gives_a_zero_row_scale_one_and_zeros(isa):
    x = torch.zeros(3, 40)
    x[1] = torch.linspace(-2, 2, 40)
    q, scale = torch.ops.compress.quantize_per_token(x)
    assert scale[0] == 1 and scale[2] == 1 and not q[0].any() and not q[2].any()
    assert q[1].abs().max() == 127  # the largest magnitude maps to the end of the grid


def test_quantize_per_token_rounds_half_to_even(isa):
    # absmax 127 gives scale exactly 1, so x / scale lands on the .5 ties
    x = torch.tensor([[127.0, 0.5, 1.5, 2.5, -0.5, -1.5, 3.5, -2.5] * 5])
    q, _ = torch.ops.compress.quantize_per_token(x)
    assert q[0, :8].tolist() == [127, 0, 2, 2, 0, -2, 4, -2]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("activation", ["none", "gelu"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
def test_int8_linear_matches_reference(isa, shape, activation, with_bias):
    m, n, k = shape
    q, x_scale = ops.quantize_per_token_reference(torch.randn(m, k, generator=torch.Generator().manual_seed(2)))
    w_q, w_scale, bias = _weights(n, k)
    bias = bias if with_bias else None
    got = torch.ops.compress.int8_linear(q, x_scale, w_q, w_scale, bias, activation)
    want = ops.int8_linear_reference(q, x_scale, w_q, w_scale, bias, activation)
    assert got.shape == (m, n) and got.dtype == torch.float32
    # int32 accumulation is exact; only the float epilogue (and GELU's erf) may differ by rounding
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES + [(33, 1536, 384), (1, 768, 3072), (19, 70, 130)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("activation", ["none", "gelu"])
def test_int8_linear_packed_matches_reference(isa, shape, activation):
    m, n, k = shape
    q, x_scale = ops.quantize_per_token_reference(torch.randn(m, k, generator=torch.Generator().manual_seed(3)))
    w_q, w_scale, bias = _weights(n, k)
    w_packed, w_sums = pack_weight(w_q)
    got = torch.ops.compress.int8_linear_packed(q, x_scale, w_packed, w_sums, w_scale, bias, activation)
    want = ops.int8_linear_reference(q, x_scale, w_q, w_scale, bias, activation)
    assert got.shape == (m, n) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_int8_linear_packed_is_exact_at_the_extremes(isa):
    # -127 activations against +-127 weights: the VNNI paths offset activations by 128 (to 1) and
    # subtract 128 * the column sums; any slip in that shows up as an integer error here
    q = torch.full((9, 4099), -127, dtype=torch.int8)
    w_q = torch.full((35, 4099), 127, dtype=torch.int8)
    w_q[::2] = -127
    got = torch.ops.compress.int8_linear_packed(q, torch.ones(9), *pack_weight(w_q), torch.ones(35), None, "none")
    assert torch.equal(got, (q.double() @ w_q.double().T).float())


def test_int8_linear_is_exact_on_integer_valued_outputs(isa):
    # scales of 1 and no bias: the output is the int32 accumulator itself, which must be exact
    q = torch.full((5, 4096), 127, dtype=torch.int8)
    w_q = torch.full((7, 4096), -127, dtype=torch.int8)
    got = torch.ops.compress.int8_linear(q, torch.ones(5), w_q, torch.ones(7), None, "none")
    assert torch.equal(got, torch.full((5, 7), -127.0 * 127 * 4096))


def test_quantize_then_int8_linear_is_within_int8_rounding_of_float_linear(isa):
    g = torch.Generator().manual_seed(3)
    x, w, b = torch.randn(128, 768, generator=g), torch.randn(3072, 768, generator=g) / 30, torch.randn(3072, generator=g)
    w_q, w_scale = torch.ops.compress.quantize_per_token(w)
    q, x_scale = torch.ops.compress.quantize_per_token(x)
    got = torch.ops.compress.int8_linear(q, x_scale, w_q, w_scale, b, "none")
    want = torch.nn.functional.linear(x, w, b)
    err = (got - want).abs().max() / want.abs().max()
    assert 0 < err < 0.02  # INT8 rounding, not zero (it is INT8) and not garbage


def test_opcheck_passes_for_both_ops():
    x = torch.randn(9, 33)
    torch.library.opcheck(torch.ops.compress.quantize_per_token.default, (x,))
    q, s = torch.ops.compress.quantize_per_token(x)
    w_q, w_scale, bias = _weights(13, 33)
    for args in [(q, s, w_q, w_scale, bias, "gelu"), (q, s, w_q, w_scale, None, "none")]:
        torch.library.opcheck(torch.ops.compress.int8_linear.default, args)


def _int8_mlp(x, w_q, w_scale, bias):
    q, s = torch.ops.compress.quantize_per_token(x.reshape(-1, x.shape[-1]))
    y = torch.ops.compress.int8_linear(q, s, w_q, w_scale, bias, "gelu")
    return y.reshape(*x.shape[:-1], -1) * 2


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_matches_eager(backend):
    w_q, w_scale, bias = _weights(24, 40)
    x = torch.randn(3, 7, 40)
    torch._dynamo.reset()
    compiled = torch.compile(_int8_mlp, fullgraph=True, backend=backend, dynamic=True)
    torch.testing.assert_close(compiled(x, w_q, w_scale, bias), _int8_mlp(x, w_q, w_scale, bias))
    x2 = torch.randn(5, 2, 40)  # another shape through the same dynamic graph
    torch.testing.assert_close(compiled(x2, w_q, w_scale, bias), _int8_mlp(x2, w_q, w_scale, bias))


def test_torch_export_keeps_the_ops_and_runs_at_other_shapes():
    w_q, w_scale, bias = _weights(24, 40)

    class Mlp(torch.nn.Module):
        def forward(self, x):
            return _int8_mlp(x, w_q, w_scale, bias)

    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(Mlp(), (torch.randn(4, 6, 40),), dynamic_shapes=({0: batch},))
    targets = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert "compress.quantize_per_token.default" in targets and "compress.int8_linear.default" in targets
    x = torch.randn(9, 6, 40)
    torch.testing.assert_close(program.module()(x), _int8_mlp(x, w_q, w_scale, bias))


# --- bad input: a TORCH_CHECK naming the op and the argument, never a silent wrong answer -------

def _valid(m=4, n=6, k=8):
    q, s = ops.quantize_per_token_reference(torch.randn(m, k))
    w_q, w_scale, bias = _weights(n, k)
    return dict(q=q, x_scale=s, w_q=w_q, w_scale=w_scale, bias=bias, activation="none")


def _call(args):
    return torch.ops.compress.int8_linear(args["q"], args["x_scale"], args["w_q"], args["w_scale"], args["bias"], args["activation"])


@pytest.mark.parametrize("change,match", [
    (lambda a: a.update(q=a["q"].int()), "int8_linear: q must be a 2-D int8"),
    (lambda a: a.update(w_q=a["w_q"].float()), "int8_linear: w_q must be a 2-D int8"),
    (lambda a: a.update(w_q=a["w_q"][:, :5].contiguous()), "q has K=8 columns but w_q has 5"),
    (lambda a: a.update(x_scale=a["x_scale"][:3].contiguous()), "int8_linear: x_scale must be float32 \\[M\\]=\\[4\\]"),
    (lambda a: a.update(x_scale=a["x_scale"].double()), "x_scale must be float32"),
    (lambda a: a.update(w_scale=a["w_scale"][:2].contiguous()), "w_scale must be float32 \\[N\\]=\\[6\\]"),
    (lambda a: a.update(bias=torch.zeros(5)), "bias must be float32 \\[N\\]=\\[6\\]"),
    (lambda a: a.update(w_q=torch.zeros(8, 6, dtype=torch.int8).t()), "must be contiguous"),
    (lambda a: a.update(activation="relu"), 'activation must be "none" or "gelu", got "relu"'),
    (lambda a: a.update(q=a["q"][0]), "q must be a 2-D int8 tensor \\[M, K\\], got 1-D"),
], ids=["q-dtype", "w_q-dtype", "k-mismatch", "x_scale-shape", "x_scale-dtype", "w_scale-shape", "bias-shape",
        "non-contiguous", "activation", "q-1d"])
def test_int8_linear_rejects_bad_input_naming_the_argument(change, match):
    args = _valid()
    change(args)
    with pytest.raises(RuntimeError, match=match):
        _call(args)


def test_int8_linear_rejects_half_output_on_cpu():
    a = _valid()
    with pytest.raises(RuntimeError, match="out_dtype must be float32 on CPU, got Half"):
        torch.ops.compress.int8_linear(a["q"], a["x_scale"], a["w_q"], a["w_scale"], None, "none", torch.float16)


def test_int8_linear_rejects_a_reduction_that_could_overflow_int32():
    q = torch.zeros(1, 140_000, dtype=torch.int8)
    with pytest.raises(RuntimeError, match="could overflow the int32 accumulator"):
        torch.ops.compress.int8_linear(q, torch.ones(1), torch.zeros(1, 140_000, dtype=torch.int8), torch.ones(1), None, "none")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_quantize_per_token_rejects_nan_and_inf(isa, bad):
    x = torch.randn(6, 50)
    x[4, 33] = bad
    with pytest.raises(RuntimeError, match="quantize_per_token: x contains NaN or Inf \\(row 4\\)"):
        torch.ops.compress.quantize_per_token(x)


@pytest.mark.parametrize("x,match", [
    (torch.randn(2, 3, 4), "x must be 2-D"),
    (torch.randn(4, 6).double(), "x must be float32 on CPU, got Double"),
    (torch.randn(4, 6).half(), "x must be float32 on CPU, got Half"),
    (torch.randn(6, 4).t(), "x must be contiguous"),
], ids=["3d", "float64", "float16", "non-contiguous"])
def test_quantize_per_token_rejects_bad_input(x, match):
    with pytest.raises(RuntimeError, match=f"compress::quantize_per_token: {match}"):
        torch.ops.compress.quantize_per_token(x)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a device mismatch needs a second device (CUDA); none here")
def test_int8_linear_rejects_tensors_on_different_devices():
    a = _valid()
    with pytest.raises(RuntimeError, match="int8_linear: every tensor must be on q's device"):
        torch.ops.compress.int8_linear(a["q"].cuda(), a["x_scale"].cuda(), a["w_q"], a["w_scale"].cuda(), None, "none")


def test_unknown_cpu_isa_request_is_an_error(monkeypatch):
    monkeypatch.setenv("COMPRESS_OPS_CPU_ISA", "avx9000")
    with pytest.raises(RuntimeError, match="COMPRESS_OPS_CPU_ISA=avx9000 is unknown"):
        _call(_valid())


@pytest.mark.parametrize("name", [n for n in ISA_NAMES if n != "portable"])
def test_mac_peak_runs_the_forced_path_and_counts_its_macs(monkeypatch, name):
    if not AVAILABLE[name]:
        pytest.skip(f"this CPU cannot run the {name} kernels (it has {cpu_isa()})")
    monkeypatch.setenv("COMPRESS_OPS_CPU_ISA", name)
    per_loop = {"amx": 6 * 16 * 16 * 64, "avx512_vnni": 24 * 64, "avx_vnni": 24 * 32, "avx2": 24 * 16}[name]
    assert torch.ops.compress.mac_peak(10, name) == 10 * per_loop * torch.get_num_threads()


def test_mac_peak_refuses_a_path_other_than_the_one_that_runs(monkeypatch):
    monkeypatch.setenv("COMPRESS_OPS_CPU_ISA", "portable")
    with pytest.raises(RuntimeError, match="no single INT8 instruction"):
        torch.ops.compress.mac_peak(10, "portable")
    with pytest.raises(RuntimeError, match="asked for avx2 but the kernels run portable"):
        torch.ops.compress.mac_peak(10, "avx2")
