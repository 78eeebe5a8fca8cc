"""Sampling: time grids, unconditional Euler/Heun (and the posterior samplers fps, dc)."""

from cryofm.sampling.grid import GRID_KINDS, time_grid
from cryofm.sampling.ode import SOLVERS, euler, heun, sample_prior

__all__ = ["GRID_KINDS", "SOLVERS", "euler", "heun", "sample_prior", "time_grid"]

# posterior samplers (restoration): closed-form data consistency and CryoFM's flow posterior sampling
from cryofm.sampling._posterior import PosteriorResult  # noqa: E402
from cryofm.sampling.dc import dc_step, sample_dc  # noqa: E402
from cryofm.sampling.fps import fps_step, guidance_weight, sample_fps  # noqa: E402

__all__ += ["PosteriorResult", "sample_dc", "dc_step", "sample_fps", "fps_step", "guidance_weight"]
