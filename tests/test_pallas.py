"""impl='pallas': the Triton kernels, run in Pallas' interpreter on CPU.

No GPU is needed: the kernels' maths runs in the interpreter
(``impl='pallas_interpret'``) and is compared with the other
implementations, and the kernels are lowered for CUDA, which checks that
Pallas' Triton lowering accepts them. Their speed is measured on a GPU by
``benchmarks/bench_update.py --impls flat,pallas``.
"""

import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import ladam_jax
from _helpers import built_with, enable_x64, laplacian, scale_by_laplacian_adam
from ladam_jax import _layout
from ladam_jax import _pallas


def count_kernels(fn, *args):
  """How many pallas_calls ``fn`` makes."""
  return str(jax.make_jaxpr(fn)(*args)).count(" pallas_call[")


def batch_layout():
  """(heads, features, head_dim): one field per head, heads leading."""
  return ladam_jax.LaplacianLayout(rows=(1,), cols=(-1,))


# (shape, layout, stencil): one and several tiles (TILE_ROWS x TILE_COLS =
# 16 x 128), widths that are not powers of two, a Flax conv kernel (rows out
# of memory order), a PyTorch conv weight, one field per head (batch axes).
CASES = [((33, 130), "flax", "9point"), ((20, 37), "flax", "5point"),
         ((3, 3, 8, 16), "flax", "9point"), ((16, 8, 3, 3), "torch", "5point"),
         ((3, 6, 5), "batch", "9point")]


@pytest.mark.parametrize("shape,layout,stencil", CASES)
def test_kernel_laplacian_matches_float64_conv(shape, layout, stencil):
  layout = batch_layout() if layout == "batch" else layout
  x = jax.random.normal(jax.random.key(len(shape)), shape, jnp.float32)
  fn = lambda x: laplacian(x, stencil, layout, impl="pallas_interpret")
  assert count_kernels(fn, x) == 1
  got = np.asarray(fn(x))
  with enable_x64(True):
    expected = np.asarray(laplacian(
        jnp.asarray(x, jnp.float64), stencil, layout, impl="conv"))
  np.testing.assert_allclose(got, expected, rtol=0,
                             atol=1e-6 * np.abs(expected).max())
  # The same sums in the same order as impl='flat'.
  flat = np.asarray(laplacian(x, stencil, layout, impl="flat"))
  np.testing.assert_allclose(got, flat, rtol=0,
                             atol=2e-7 * np.abs(expected).max())


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.bfloat16, jnp.float16])
def test_other_dtypes_and_fields_use_flat(dtype):
  with enable_x64(True):
    for x in (jnp.ones((8, 9), dtype).at[2, 3].set(7),
              jnp.arange(12.0, dtype=dtype)):  # a 1-D field
      fn = lambda x: laplacian(x, impl="pallas_interpret")
      assert count_kernels(fn, x) == 0
      np.testing.assert_array_equal(fn(x), laplacian(x, impl="flat"))


def tree():
  """Leaves the fused kernel takes (dense 40x48, conv kernel), a small one
  (Laplacian kernel, stacked), a bias, and one that c2 leaves uncoupled."""
  return {"dense": jnp.zeros((40, 48)), "conv": jnp.zeros((3, 3, 16, 32)),
          "small": jnp.zeros((8, 8)), "b": jnp.zeros(48),
          "off": jnp.zeros((32, 64))}


def grads(params, t):
  key = jax.random.fold_in(jax.random.key(3), t)
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  return treedef.unflatten([jax.random.normal(k, p.shape) * (1 + i)
                            for i, (k, p) in enumerate(zip(keys, leaves))])


def run(tx, params, steps=3):
  state = tx.init(params)
  update = jax.jit(tx.update)
  outs = []
  for t in range(steps):
    updates, state = update(grads(params, t), state)
    outs.append(updates)
  return outs, state


# Some c2 above the 9-point bound 3/16 on purpose (the floor path must agree
# too); the transforms below opt in with allow_unstable_c2=True.
C2 = {"dense": 0.3, "conv": 0.2, "small": 0.1, "b": 0.1, "off": 0.0}


@pytest.mark.parametrize("stencil,variance_floor", [("9point", "eps"),
                                                    ("5point", 0.0)])
def test_fused_adam_matches_flat(stencil, variance_floor):
  params = tree()
  make = lambda impl: scale_by_laplacian_adam(
      allow_unstable_c2=True,
      c2=C2, stencil=stencil, variance_floor=variance_floor, impl=impl)
  expected = run(make("flat"), params)
  tx = make("pallas_interpret")
  # dense + conv fused; small (stacked), b and off by 'flat' in XLA.
  assert count_kernels(tx.update, params, tx.init(params)) == 2
  got = run(tx, params)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_fused_adam_non_finite_entries_match_flat():
  """The fused kernel's overflow rule is _coupling.smoothed's: an entry
  where v + c2·L(v) is not finite (g² overflowed, a NaN gradient, or a
  neighbour of either) is left unsmoothed."""
  params = {"dense": jnp.zeros((40, 48)), "conv": jnp.zeros((3, 3, 16, 32))}
  spiked = lambda g: g.at[(1,) * g.ndim].set(2e19).at[(2,) * g.ndim].set(
      jnp.nan)
  make = lambda impl: scale_by_laplacian_adam(c2=0.1, impl=impl)

  def steps(tx):
    state, outs = tx.init(params), []
    for t in range(3):
      g = grads(params, t)
      updates, state = jax.jit(tx.update)(
          jax.tree.map(spiked, g) if t == 0 else g, state)
      outs.append(updates)
    return outs, state

  expected = steps(make("flat"))
  got = steps(make("pallas_interpret"))
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  for u in jax.tree.leaves(got[0]):
    assert np.isfinite(u).sum() == u.size - 1  # the NaN entry only


def test_fused_adam_traced_hyperparameters():
  """Under inject_hyperparams (traced b1, b2, eps, c2; c2 switched off
  mid-run) the fused kernel still gives the unfused numbers."""
  params = {"dense": jnp.zeros((40, 48)), "conv": jnp.zeros((3, 3, 16, 32))}

  def make(impl):
    # inject_hyperparams builds the transform at init and update: inside
    # the implementation's context.
    @functools.wraps(ladam_jax.scale_by_laplacian_adam)  # its signature
    def factory(*args, **kwargs):
      return built_with(impl, ladam_jax.scale_by_laplacian_adam, *args,
                        **kwargs)

    return optax.inject_hyperparams(factory)(b1=0.8, b2=0.99, eps=1e-6,
                                             c2=0.25)

  def steps(tx):
    state = tx.init(params)
    update = jax.jit(tx.update)
    outs = []
    for t, c2 in enumerate((0.25, 0.5, 0.0)):
      if "c2" in state.hyperparams:
        state.hyperparams["c2"] = jnp.asarray(c2)
      updates, state = update(grads(params, t), state)
      outs.append(updates)
    return outs, state

  expected = steps(make("flat"))
  tx = make("pallas_interpret")
  assert count_kernels(tx.update, params, tx.init(params)) == 2
  got = steps(tx)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  # The state is Adam's (raw moments), so a traced c2 of 0 gives Adam's
  # update (to optax's float32 bias correction); c2 > 0 does not.
  adam = steps(optax.inject_hyperparams(optax.scale_by_adam)(
      b1=0.8, b2=0.99, eps=1e-6))
  for a, b in zip(jax.tree.leaves(got[0][-1]), jax.tree.leaves(adam[0][-1])):
    np.testing.assert_allclose(a, b, rtol=1e-4)
  for a, b in zip(jax.tree.leaves(got[0][0]), jax.tree.leaves(adam[0][0])):
    assert np.abs(a - b).max() > 1e-2 * np.abs(b).max()


@pytest.mark.slow
def test_fused_adam_under_vmap():
  params = {"dense": jnp.zeros((2, 40, 48))}  # a batch of 2 (40, 48) trees
  tx = scale_by_laplacian_adam(
      allow_unstable_c2=True, c2=0.3, impl="pallas_interpret")
  one = {"dense": jnp.zeros((40, 48))}
  state = jax.vmap(tx.init)(params)
  g = grads(params, 0)
  assert count_kernels(jax.vmap(tx.update), g, state) == 1
  updates, state = jax.jit(jax.vmap(tx.update))(g, state)
  for k in range(2):
    u, s = tx.update({"dense": g["dense"][k]}, tx.init(one))
    np.testing.assert_allclose(updates["dense"][k], u["dense"], rtol=1e-6)
    np.testing.assert_allclose(state.nu["dense"][k], s.nu["dense"], rtol=1e-6)


def test_other_transforms_use_flat():
  """Only LAdam's variance_lap has a fused kernel; the other transforms and
  modes keep the stencil inside XLA's fusion ('flat'), no standalone
  Laplacian kernel between XLA loops."""
  params = tree()
  unstable = dict(c2=C2, allow_unstable_c2=True)
  for tx in built_with("pallas_interpret", lambda: (
      ladam_jax.ladam(1e-3, mode="update_lap", **unstable),
      ladam_jax.lrmsprop(1e-3, **unstable),
      ladam_jax.ladam(1e-3, mode="weight_lap", **unstable))):
    assert count_kernels(lambda g, s: tx.update(g, s, params), params,
                         tx.init(params)) == 0
  tx = built_with("pallas_interpret", ladam_jax.ladamw, 1e-3, **unstable)
  assert count_kernels(lambda g, s: tx.update(g, s, params), params,
                       tx.init(params)) == 2


@pytest.mark.skipif(jax.default_backend() not in ("gpu", "cuda", "rocm"),
                    reason="needs a GPU")
def test_on_gpu_pallas_runs_the_fused_kernels():
  """On a GPU the dense and conv leaves run the fused kernel,
  with the numbers of 'flat'."""
  assert _pallas.on_gpu()
  params = tree()
  make = lambda impl: scale_by_laplacian_adam(
      allow_unstable_c2=True, c2=C2, impl=impl)
  tx = make("pallas")
  assert count_kernels(tx.update, params, tx.init(params)) == 2
  got, expected = run(tx, params), run(make("flat"), params)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.skipif(jax.default_backend() in ("gpu", "cuda", "rocm"),
                    reason="on a GPU impl='pallas' runs the kernels")
def test_off_gpu_pallas_is_flat():
  """Without a GPU impl='pallas' compiles to 'flat'."""
  assert not _pallas.on_gpu()
  params = tree()
  tx = scale_by_laplacian_adam(
      allow_unstable_c2=True, c2=C2, impl="pallas")
  assert count_kernels(tx.update, params, tx.init(params)) == 0
  got = run(tx, params, steps=2)
  expected = run(scale_by_laplacian_adam(
      allow_unstable_c2=True, c2=C2, impl="flat"), params, steps=2)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(a, b)


def test_kernels_lower_to_triton_for_cuda():
  """Pallas' Triton lowering accepts both kernels (checked without a GPU)."""
  spec = _layout.field_spec((40, 48), "flax")
  x = jnp.ones((40, 48))

  def fused(g, m, v):
    return _pallas.fused_adam_leaf(
        g, m, v, spec, c2=0.1, use_lap=True, b1=0.9, b2=0.999, eps=1e-8,
        floor=1e-8, bc1=0.1, bc2=1e-3, stencil="9point")

  for fn, args in ((fused, (x, x, x)),
                   (lambda x: _pallas.laplacian_kernel(x, spec, "5point"),
                    (x,))):
    lowered = jax.jit(fn).trace(*args).lower(
        lowering_platforms=("cuda",)).as_text()
    assert len(re.findall(r"custom_call @__gpu\$xla\.gpu\.triton",
                          lowered)) == 1


def test_fused_kernel_takes_float32_leaves_only():
  params = tree()
  params["bf16"] = jnp.zeros((40, 48), jnp.bfloat16)  # no kernel: flat
  # mu_dtype=bfloat16 (moments not float32): no fused kernel, all 'flat'.
  for mu_dtype, kernels in ((None, 2), (jnp.bfloat16, 0)):
    tx = scale_by_laplacian_adam(
        allow_unstable_c2=True, c2=C2 | {"bf16": 0.1},
        impl="pallas_interpret", mu_dtype=mu_dtype)
    assert count_kernels(tx.update, params, tx.init(params)) == kernels


def test_row_tables_follow_the_field():
  """The kernel's row tables: up/down of every memory row, across fields."""
  spec = _layout.field_spec((3, 3, 4, 5), "flax")  # rows (in, kh, kw)
  n, w, up, down = _pallas._tables((3, 3, 4, 5), spec)
  assert (n, w) == (36, 5)
  field_row_of_mem = {}
  for i in range(4):
    for kh in range(3):
      for kw in range(3):
        field_row_of_mem[(kh * 3 + kw) * 4 + i] = (i * 3 + kh) * 3 + kw
  mem_of_field = {f: m for m, f in field_row_of_mem.items()}
  for m in range(36):
    f = field_row_of_mem[m]
    assert up[m] == mem_of_field[(f - 1) % 36]
    assert down[m] == mem_of_field[(f + 1) % 36]
  spec = _layout.field_spec((3, 6, 5), batch_layout())  # 3 fields of 6 x 5
  n, w, up, down = _pallas._tables((3, 6, 5), spec)
  assert (n, w) == (18, 5)
  rows = np.arange(18)
  np.testing.assert_array_equal(up, rows // 6 * 6 + (rows - 1) % 6)
  np.testing.assert_array_equal(down, rows // 6 * 6 + (rows + 1) % 6)
