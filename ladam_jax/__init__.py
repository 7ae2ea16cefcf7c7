"""ladam_jax: Laplacian Adam (LAdam) and friends as Optax transformations.

A JAX/Optax port of the PyTorch package ``ladam`` 0.4.1: Adam, RMSProp and
AdaGrad whose second-moment estimate is smoothed by a periodic discrete
Laplacian over each parameter leaf.
"""

from ladam_jax._ladagrad import ladagrad
from ladam_jax._ladam import ladam
from ladam_jax._ladam import ladamw
from ladam_jax._lrmsprop import lrmsprop
from ladam_jax._auto import analyze_params
from ladam_jax._auto import auto_c2
from ladam_jax._auto import classify_param
from ladam_jax._auto import classify_params
from ladam_jax._auto import ParamReport
from ladam_jax._c2 import c2_by_path
from ladam_jax._tree_specs import per_leaf
from ladam_jax._tree_specs import PerLeaf
from ladam_jax._diagnostics import smoothing_stats
from ladam_jax._diagnostics import smoothing_step_ratio
from ladam_jax._diagnostics import SmoothingStats
from ladam_jax._c2 import suggest_c2
from ladam_jax._sharded_laplacian import laplacian
from ladam_jax._stencil import stability_bound
from ladam_jax._laprop import laprop
from ladam_jax._laprop import scale_by_laplacian_laprop
from ladam_jax._laprop import ScaleByLaplacianLapropState
from ladam_jax._coupling import LaplacianKwargs
from ladam_jax._layout import auto_layout
from ladam_jax._layout import LaplacianLayout
from ladam_jax._reorder import compute_neuron_order
from ladam_jax._reorder import reorder_dense
from ladam_jax._schedules import chi_anneal_schedule
from ladam_jax._smoothing import lsadam
from ladam_jax._smoothing import lssgd
from ladam_jax._smoothing import scale_by_implicit_laplacian_adam
from ladam_jax._smoothing import scale_by_laplacian_smoothing
from ladam_jax._smoothing import ScaleByLaplacianSmoothingState
from ladam_jax._add_laplacian import add_update_laplacian
from ladam_jax._add_laplacian import add_weight_laplacian
from ladam_jax._add_laplacian import AddLaplacianState
from ladam_jax._wave import scale_by_wave_variance
from ladam_jax._wave import ScaleByWaveVarianceState
from ladam_jax._ladagrad import scale_by_laplacian_adagrad
from ladam_jax._ladam import scale_by_laplacian_adam
from ladam_jax._lrmsprop import scale_by_laplacian_rms
from ladam_jax._ladagrad import ScaleByLaplacianAdagradState
from ladam_jax._ladam import ScaleByLaplacianAdamState
from ladam_jax._lrmsprop import ScaleByLaplacianRmsState
from ladam_jax._vradam import scale_by_velocity_regularization
from ladam_jax._vradam import VelocityRegularizationState
from ladam_jax._vradam import vradam

__version__ = "0.4.3"

__all__ = [
    "AddLaplacianState",
    "ScaleByLaplacianLapropState",
    "VelocityRegularizationState",
    "LaplacianKwargs",
    "LaplacianLayout",
    "ScaleByLaplacianAdagradState",
    "ScaleByLaplacianAdamState",
    "ScaleByLaplacianRmsState",
    "ScaleByLaplacianSmoothingState",
    "ScaleByWaveVarianceState",
    "SmoothingStats",
    "ParamReport",
    "PerLeaf",
    "add_update_laplacian",
    "add_weight_laplacian",
    "analyze_params",
    "auto_c2",
    "auto_layout",
    "c2_by_path",
    "chi_anneal_schedule",
    "classify_param",
    "compute_neuron_order",
    "classify_params",
    "ladagrad",
    "ladam",
    "ladamw",
    "laplacian",
    "laprop",
    "lrmsprop",
    "lsadam",
    "lssgd",
    "per_leaf",
    "reorder_dense",
    "scale_by_laplacian_adagrad",
    "scale_by_laplacian_adam",
    "scale_by_laplacian_laprop",
    "scale_by_laplacian_rms",
    "scale_by_implicit_laplacian_adam",
    "scale_by_laplacian_smoothing",
    "scale_by_velocity_regularization",
    "scale_by_wave_variance",
    "smoothing_stats",
    "smoothing_step_ratio",
    "stability_bound",
    "suggest_c2",
    "vradam",
]
