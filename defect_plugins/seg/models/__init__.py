"""mmseg models for ARCD: reconstructor (+MDC/MFLM), segmentor, CALM/CBAM/CA (as a neck or inside a U-Net
decoder), data preprocessor."""
from .attention_unet import AttentionUNet
from .arcd_segmentor import ARCDSegmentor, StageOneCheckpointError, load_reconstructor_state
from .calm import CALM, CBAM, AttentionNeck, ChannelAttention, CoordAttention, SpatialAttention
from .data_preprocessor import ARCDDataPreProcessor
from .mflm import MFLM, ChannelTransformer, MaskedDilatedConv, SqueezeExcitation
from .reconstructor import ARCDReconstructionModel, ARCDReconstructor, MaskedConvBNReLU

__all__ = ["ARCDDataPreProcessor", "ARCDReconstructionModel", "ARCDReconstructor", "ARCDSegmentor", "AttentionNeck",
           "AttentionUNet", "CALM", "CBAM", "ChannelAttention", "ChannelTransformer", "CoordAttention", "MFLM",
           "MaskedConvBNReLU", "MaskedDilatedConv", "SpatialAttention", "SqueezeExcitation", "StageOneCheckpointError",
           "load_reconstructor_state"]
