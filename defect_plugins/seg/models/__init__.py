"""mmseg models for ARCD: reconstructor (+MFLM), segmentor, CALM/CBAM/CA, data preprocessor."""
from .arcd_segmentor import ARCDSegmentor, StageOneCheckpointError, load_reconstructor_state
from .calm import CALM, CBAM, AttentionNeck, ChannelAttention, CoordAttention, SpatialAttention
from .data_preprocessor import ARCDDataPreProcessor
from .mflm import MFLM, ChannelTransformer, MaskedDilatedConv
from .reconstructor import ARCDReconstructionModel, ARCDReconstructor

__all__ = ["ARCDDataPreProcessor", "ARCDReconstructionModel", "ARCDReconstructor", "ARCDSegmentor", "AttentionNeck",
           "CALM", "CBAM", "ChannelAttention", "ChannelTransformer", "CoordAttention", "MFLM", "MaskedDilatedConv",
           "SpatialAttention", "StageOneCheckpointError", "load_reconstructor_state"]
