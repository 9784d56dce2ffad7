"""DC2-like repository simulator: GalSim scenes, templates, differences,
artifacts, detection and truth labels, written to a Butler repository."""

from .config import PRESETS, SimulationConfig, make_config
from .simulator import SimulationSummary, Simulator

__all__ = ["PRESETS", "SimulationConfig", "SimulationSummary", "Simulator", "make_config"]
