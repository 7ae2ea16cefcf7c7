r"""LAdaGrad: AdaGrad whose accumulator is smoothed by a Laplacian.

:func:`scale_by_laplacian_adagrad` and the alias :func:`ladagrad`
(``ladam.LAdaGrad``).

References:
  Partin, `LAdam <https://pypi.org/project/ladam/0.4.1/>`_, 2026 (the PyTorch
  package ``ladam`` 0.4.1, MIT).
"""

from typing import Any, NamedTuple, Optional

import jax
import optax

from ladam_jax import _accumulators
from ladam_jax import _alias
from ladam_jax import _coupling
from ladam_jax import _numerics
from ladam_jax import _validation

__all__ = ["ScaleByLaplacianAdagradState", "scale_by_laplacian_adagrad",
           "ladagrad"]

class ScaleByLaplacianAdagradState(NamedTuple):
  """State of :func:`scale_by_laplacian_adagrad`."""

  count: jax.Array  # shape=(), dtype=jnp.int32
  sum_of_squares: optax.Updates


def scale_by_laplacian_adagrad(
    eps: jax.typing.ArrayLike = 1e-10,
    *,
    initial_accumulator_value: jax.typing.ArrayLike = 0.0,
    c2: Any = 1e-4,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""Rescale updates by AdaGrad whose accumulator is Laplacian-smoothed.

  As the reference ``LAdaGrad`` (eps outside the square root):

  .. math::
    s_t = s_{t-1} + g_t^2, \quad
    \tilde s = \max(s_t + c_2 L(s_t), 0)\ \text{where use\_lap, else } s_t,
    \quad u = g_t / (\sqrt{\tilde s} + \epsilon).

  The reference's ``lr_decay`` and weight decay live in
  :func:`ladam_jax.ladagrad`.

  Args:
    eps: added to the square root, >= 0.
    initial_accumulator_value: initial value of the accumulator (0 in the
      reference).
    c2: coupling strength >= 0: a number, a schedule, a pytree (prefix) of
      them, or a params function marked with :func:`ladam_jax.per_leaf`
      (:doc:`c2-and-layouts`).
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    A :class:`optax.GradientTransformation`.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> tx = ladam_jax.scale_by_laplacian_adagrad(c2=1e-4)
    >>> state = tx.init({'w': jnp.ones((8, 8))})
    >>> updates, state = tx.update({'w': jnp.ones((8, 8))}, state)
  """
  _validation.check_non_negative("eps", eps)
  _validation.check_non_negative("initial_accumulator_value",
                                 initial_accumulator_value)
  return _accumulators.scale_by_smoothed_root(
      _coupling.config("scale_by_laplacian_adagrad", c2, **coupling), eps,
      initial_accumulator_value, ScaleByLaplacianAdagradState,
      lambda g, acc: jax.tree.map(lambda s, x: s + _numerics.abs_sq(x), acc,
                                  g))


def ladagrad(
    learning_rate: optax.ScalarOrSchedule = 1e-2,
    lr_decay: Optional[jax.typing.ArrayLike] = None,
    eps: jax.typing.ArrayLike = 1e-10,
    weight_decay: Optional[jax.typing.ArrayLike] = None,
    *,
    c2: Any = 1e-4,
    initial_accumulator_value: jax.typing.ArrayLike = 0.0,
    **coupling: _coupling.Coupling,
) -> optax.GradientTransformation:
  r"""LAdaGrad: AdaGrad with a Laplacian-smoothed accumulator (``ladam.LAdaGrad``).

  Decoupled weight decay with the base learning rate,
  :math:`p \leftarrow p(1-\eta\lambda)`, then
  :math:`p \leftarrow p - \frac{\eta}{1 + (t-1)\,\text{lr\_decay}}\,
  g/(\sqrt{\tilde s} + \epsilon)`. As in Optax, a stage is left out only
  when its argument is None, so the state's structure never depends on how
  a number is spelled.

  Args:
    learning_rate: a float >= 0 or an Optax schedule.
    lr_decay: the step size is divided by ``1 + (t-1)·lr_decay``; >= 0,
      or None (default) for no decay (the reference's ``lr_decay=0``).
    eps: added to the square root, >= 0.
    weight_decay: decoupled weight decay rate >= 0 (scaled by the base lr),
      or None (default) for none (the reference's ``weight_decay=0``).
    c2: coupling strength >= 0: a number, a schedule, a pytree (prefix) of
      them, or a params function marked with :func:`ladam_jax.per_leaf`
      (:doc:`c2-and-layouts`).
    initial_accumulator_value: initial value of the accumulator.
    **coupling: how c2 couples the leaves, :class:`ladam_jax.LaplacianKwargs`
      (``stencil``, ``layout``, ``partition_specs``, ...).

  Returns:
    ``optax.chain(scale_by_laplacian_adagrad(...), [lr_decay schedule],
    [add_decayed_weights], scale_by_learning_rate(learning_rate))``.

  Examples:
    >>> import jax.numpy as jnp, ladam_jax
    >>> opt = ladam_jax.ladagrad(1e-2, lr_decay=1e-3, c2=1e-4)
    >>> state = opt.init({'w': jnp.ones((8, 8))})
  """
  coupling = _coupling.check_names("ladagrad", coupling)
  _alias.check_learning_rate(learning_rate)
  _validation.check_non_negative("lr_decay", lr_decay)
  parts = [scale_by_laplacian_adagrad(
      eps, initial_accumulator_value=initial_accumulator_value, c2=c2,
      **coupling)]
  if lr_decay is not None:
    # count is 0 at step 1: the factor is 1 / (1 + (t - 1) * lr_decay).
    parts.append(optax.scale_by_schedule(
        lambda count: 1 / (1 + count * lr_decay)))
  return _alias.with_decay_and_lr(parts, learning_rate, weight_decay)
