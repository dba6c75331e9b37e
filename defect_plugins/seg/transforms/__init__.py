"""mmseg transforms for ARCD: anomaly simulation, square padding, region maps and packing."""
from .anomaly_simulation import PadSquareResize, SimulateAnomaly, pad_square_resize, procedural_texture
from .formatting import LoadRegionMap, PackARCDInputs

__all__ = ["LoadRegionMap", "PackARCDInputs", "PadSquareResize", "SimulateAnomaly", "pad_square_resize",
           "procedural_texture"]
