"""Building blocks of AKF reverse distillation: teacher-level fusions and one-class embeddings."""

from .bottleneck import AkfBottleneck
from .embedding import OneClassEmbedding, ResampleEmbedding, block_for_backbone
from .fusion import AsymptoticKnowledgeFusion, ConcatFusion, FusionStep, conv_bn_relu

__all__ = [
    "AkfBottleneck",
    "AsymptoticKnowledgeFusion",
    "ConcatFusion",
    "FusionStep",
    "OneClassEmbedding",
    "ResampleEmbedding",
    "block_for_backbone",
    "conv_bn_relu",
]
